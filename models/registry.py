"""Model manifest, local directory resolution, sha256 verification and pinned downloads.

The edge never hands a path to onnxruntime before ``resolve()`` has checked the file's
sha256: a missing or mismatched model is a ModelError naming the file and the expected hash,
not a crash inside onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tomllib
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from storesense.errors import ModelError

ENV_MODELS_DIR = "STORESENSE_MODELS_DIR"
# What an edge camera loads by default: the cheap and the crowd detector (chosen per camera,
# edge/vision/profile.py) and the appearance model of its re-identification.
AUTO_DETECTORS = ("yolox_nano", "bytetrack_nano_mot17")
REID_MODEL = "person_reid_0248"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    family: str
    task: str
    sha256: str
    bytes: int
    licence: str
    source: str
    url: str
    input: str
    output: str
    # shipped inside the package (models/bundled/), so a fresh install runs without a download
    bundled: bool = False


@lru_cache(maxsize=1)
def manifest() -> dict[str, ModelSpec]:
    text = resources.files("models").joinpath("manifest.toml").read_text(encoding="utf-8")
    return {m["name"]: ModelSpec(**m) for m in tomllib.loads(text)["model"]}


def spec(name: str) -> ModelSpec:
    try:
        return manifest()[name]
    except KeyError as e:
        raise ModelError(f"unknown model {name!r}; known: {sorted(manifest())}") from e


def default_models_dir() -> Path:
    """$STORESENSE_MODELS_DIR, else ../shared/models beside a checkout, else ~/.cache."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env)
    checkout_shared = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
    if checkout_shared.is_dir():
        return checkout_shared
    return Path.home() / ".cache" / "storesense" / "models"


def bundled_path(name: str) -> Path | None:
    """The copy of a model shipped as package data (models/bundled/), when it has one."""
    s = spec(name)
    if not s.bundled:
        return None
    path = Path(str(resources.files("models").joinpath("bundled", s.file)))
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=32)
def _verified(path: Path, mtime_ns: int, size: int, expected: str) -> bool:
    return sha256_of(path) == expected


def resolve(name: str, models_dir: str | Path | None = None) -> Path:
    """Path of a verified model file, or a ModelError that says what to do."""
    s = spec(name)
    d = Path(models_dir) if models_dir else default_models_dir()
    path = d / s.file
    if not path.is_file() and (shipped := bundled_path(name)) is not None:
        # the same pinned bytes as a download (checked below): a directory without the file
        # falls back to the package's copy; a file that is there but wrong is still refused
        path = shipped
    if not path.is_file():
        raise ModelError(
            f"model {s.name}: file {path} not found (expected sha256 {s.sha256}); "
            f"run `storesense models fetch {d}` or set {ENV_MODELS_DIR}"
        )
    st = path.stat()
    if not _verified(path, st.st_mtime_ns, st.st_size, s.sha256):
        raise ModelError(
            f"model {s.name}: {path} has sha256 {sha256_of(path)}, expected {s.sha256}"
        )
    return path


def resolve_path(path_or_name: str, models_dir: str | Path | None = None) -> tuple[Path, str]:
    """Accept a manifest name or a file path; a path must match a manifest entry's sha256."""
    if path_or_name in manifest():
        p = resolve(path_or_name, models_dir)
        return p, spec(path_or_name).sha256
    p = Path(path_or_name)
    if not p.is_file():
        raise ModelError(f"model file {p} not found; known names: {sorted(manifest())}")
    digest = sha256_of(p)
    for s in manifest().values():
        if s.sha256 == digest:
            return p, digest
    raise ModelError(
        f"model file {p} (sha256 {digest}) is not in the models manifest; pin it in "
        "models/manifest.toml before the edge will load it"
    )


def verify_dir(models_dir: str | Path) -> list[tuple[str, str]]:
    """(file, verdict) for every manifest entry: 'ok', 'missing' or 'sha256 mismatch: ...'."""
    d = Path(models_dir)
    out = []
    for s in manifest().values():
        p = d / s.file
        if not p.is_file():
            out.append((s.file, "missing"))
        elif (got := sha256_of(p)) != s.sha256:
            out.append((s.file, f"sha256 mismatch: got {got}, expected {s.sha256}"))
        else:
            out.append((s.file, "ok"))
    return out


def fetch(models_dir: str | Path, names: list[str] | None = None, timeout: float = 60.0) -> None:
    """Download pinned URLs into ``models_dir``; a file is kept only if its sha256 matches.

    Every model is tried even when an earlier one fails, so a user without one model (the
    age/gender model has no public download) still gets the detector; the failures are then
    raised together in one ModelError.
    """
    d = Path(models_dir)
    d.mkdir(parents=True, exist_ok=True)
    failed = []
    for s in manifest().values():
        if names and s.name not in names:
            continue
        try:
            _fetch_one(s, d, timeout)
        except ModelError as e:
            print(f"{s.file}: {e}", file=sys.stderr)
            failed.append(s.name)
    if failed:
        raise ModelError(f"not fetched into {d} (reasons above): {', '.join(failed)}")


def _fetch_one(s: ModelSpec, d: Path, timeout: float) -> None:
    target = d / s.file
    if target.is_file() and sha256_of(target) == s.sha256:
        print(f"{s.file}: already present and verified")
        return
    shipped = bundled_path(s.name)
    if shipped is not None and sha256_of(shipped) == s.sha256:
        shutil.copyfile(shipped, target)  # no download needed: the package carries it
        print(f"{s.file}: copied from the package's bundled copy, verified")
        return
    if not s.url:
        raise ModelError(
            f"model {s.name} has no public download ({s.source}); copy {s.file} "
            f"(sha256 {s.sha256}) into {d}"
        )
    tmp = target.with_suffix(target.suffix + ".part")
    print(f"{s.file}: downloading {s.url}")
    try:
        with urllib.request.urlopen(s.url, timeout=timeout) as r, tmp.open("wb") as f:
            while block := r.read(1 << 20):
                f.write(block)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"model {s.name}: download from {s.url} failed: {e}") from e
    got = sha256_of(tmp)
    if got != s.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"model {s.name}: downloaded sha256 {got}, expected {s.sha256}")
    tmp.replace(target)
    print(f"{s.file}: verified")


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_cmd", required=True)
    f = sub.add_parser("fetch", help="download the pinned models and verify their sha256")
    f.add_argument("dir", nargs="?", default=None, help="target directory")
    f.add_argument("--name", action="append", help="only this model (repeatable)")
    v = sub.add_parser("verify", help="check a local models directory against the manifest")
    v.add_argument("dir", nargs="?", default=None)
    sub.add_parser("list", help="print the manifest")


def run(args: argparse.Namespace) -> int:
    d = Path(args.dir) if getattr(args, "dir", None) else default_models_dir()
    if args.models_cmd == "list":
        for s in manifest().values():
            print(f"{s.name:24} {s.file:50} {s.sha256[:12]}  {s.licence}")
        return 0
    if args.models_cmd == "fetch":
        try:
            fetch(d, args.name)
        except ModelError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    bad = 0
    for file, verdict in verify_dir(d):
        print(f"{file:50} {verdict}")
        bad += verdict != "ok"
    print(f"{d}: {len(manifest()) - bad}/{len(manifest())} models verified")
    return 1 if bad else 0
