"""Model manifest against the real weights in ../shared/models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models import registry
from storesense.errors import ModelError


def test_every_manifest_model_verifies(models_dir: Path) -> None:
    verdicts = dict(registry.verify_dir(models_dir))
    assert verdicts == {s.file: "ok" for s in registry.manifest().values()}


def test_missing_model_names_file_and_hash(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as e:
        registry.resolve("bytetrack_nano_mot17", tmp_path)
    assert "bytetrack_nano_mot17.onnx" in str(e.value)
    assert registry.spec("bytetrack_nano_mot17").sha256 in str(e.value)


def test_a_directory_without_the_open_detector_falls_back_to_the_packaged_copy(
    tmp_path: Path,
) -> None:
    """A fresh install (no ../shared, empty cache) still resolves yolox_nano: the package
    ships it, and it is checked against the same pinned sha256."""
    got = registry.resolve("yolox_nano", tmp_path)
    assert got == registry.bundled_path("yolox_nano")
    assert registry.sha256_of(got) == registry.spec("yolox_nano").sha256
    assert registry.bundled_path("bytetrack_nano_mot17") is None  # only the open-data one


def test_fetch_copies_the_packaged_model_without_a_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.fetch(tmp_path, ["yolox_nano"])
    assert "copied from the package" in capsys.readouterr().out
    assert registry.sha256_of(tmp_path / "yolox_nano.onnx") == registry.spec("yolox_nano").sha256


def test_corrupted_model_is_refused(tmp_path: Path, models_dir: Path) -> None:
    target = tmp_path / "yolox_nano.onnx"
    shutil.copy(models_dir / "yolox_nano.onnx", target)
    with target.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match="expected 695e750a"):
        registry.resolve("yolox_nano", tmp_path)


def test_unpinned_model_file_is_refused(tmp_path: Path) -> None:
    rogue = tmp_path / "rogue.onnx"
    rogue.write_bytes(b"not a pinned model")
    with pytest.raises(ModelError, match="not in the models manifest"):
        registry.resolve_path(str(rogue))


def test_fetch_without_url_says_to_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelError, match="age_gender_retail_0013"):
        registry.fetch(tmp_path, ["age_gender_retail_0013"])
    err = capsys.readouterr().err
    assert "no public download" in err and registry.spec("age_gender_retail_0013").sha256 in err


def test_cli_verify_exit_codes(tmp_path: Path, models_dir: Path) -> None:
    from storesense.cli import main

    assert main(["models", "verify", str(models_dir)]) == 0
    assert main(["models", "verify", str(tmp_path)]) == 1


def test_fetch_reports_every_failure_and_keeps_what_verifies(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yolox = registry.spec("yolox_nano").file
    (tmp_path / yolox).write_bytes((models_dir / yolox).read_bytes())
    with pytest.raises(ModelError) as err:
        registry.fetch(tmp_path, ["yolox_nano", "age_gender_retail_0013"])
    assert "age_gender_retail_0013" in str(err.value)
    assert "yolox_nano" not in str(err.value)
    assert f"{yolox}: already present and verified" in capsys.readouterr().out
    assert registry.resolve("yolox_nano", tmp_path) == tmp_path / yolox
