"""The installer's page on the edge box: draw counting lines and zones on a live picture.

Served on the store LAN only (``[installer]`` in edge.toml, off unless configured), behind
its own user and password (an scrypt hash on disk; there is no default password). Pictures
stay in this process's memory and on this page: the node never puts one on MQTT. Saving
hands the camera's new configuration to the node, which applies it as it applies a remote
config and reports it to HQ as configuration (``{prefix}/{store}/{camera}/reported``).

    python -m edge.node.installer hash-password FILE    # asks for the password twice
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import hashlib
import hmac
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from edge.node.camera_worker import CameraWorker, Frame
from edge.node.config import InstallerConfig
from storesense.config import describe_validation_error
from storesense.errors import ConfigError
from storesense.schema import AnalyticsConfig, CameraConfigMessage

MAX_BODY = 64 * 1024  # a config with the schema's most lines and zones is ~40 kB of JSON
APPLY_WAIT_S = 10.0  # how long a save waits for the camera thread to apply it
FAIL_DELAY_S = 1.0  # each refused login costs the caller this long
# After this many refused logins in a minute every login is refused unchecked until the
# minute has passed: guessing stays slow, and scrypt cannot be made to eat the box's CPU.
FAIL_BURST, FAIL_WINDOW_S = 10, 60.0
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
CSP = ("default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
OnSave = Callable[[CameraConfigMessage], None]


# --------------------------------------------------------------------------- password


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    kind, n, r, p, salt, digest = stored.split("$")
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                         p=int(p), maxmem=2**26)
    return hmac.compare_digest(got, bytes.fromhex(digest))


def read_hash(path: Path) -> str:
    """The stored hash; ConfigError naming the field if the file is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"installer.password_hash_file: cannot read {path}: {e}") from e
    parts = text.split("$")
    try:
        ok = len(parts) == 6 and parts[0] == "scrypt" and all(
            1 <= int(v) <= 2**20 for v in parts[1:4]) and all(bytes.fromhex(v) for v in parts[4:])
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"installer.password_hash_file: {path} holds no scrypt hash; write "
                          "one with `python -m edge.node.installer hash-password FILE`")
    return text


class BasicAuth:
    """HTTP Basic against the stored hash. A success is remembered as a keyed digest, so the
    page's polling does not run scrypt twice a second; each failure is answered late."""

    def __init__(self, username: str, stored: str) -> None:
        self.username, self.stored = username, stored
        self._key = secrets.token_bytes(32)
        self._good: bytes | None = None
        self._failures: deque[float] = deque(maxlen=FAIL_BURST)

    def _mac(self, header: str) -> bytes:
        return hmac.new(self._key, header.encode(), "sha256").digest()

    async def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if self._good is not None and hmac.compare_digest(self._mac(header), self._good):
            return
        now = time.monotonic()
        throttled = len(self._failures) == FAIL_BURST and now - self._failures[0] < FAIL_WINDOW_S
        if not throttled and self._check(header):
            self._good = self._mac(header)
            return
        if not throttled:
            self._failures.append(now)
        await asyncio.sleep(FAIL_DELAY_S)
        raise _Unauthorized()

    def _check(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or len(value) > 1024:
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # binascii.Error and UnicodeDecodeError
            return False
        ok_user = hmac.compare_digest(user.encode(), self.username.encode())
        return check_password(password, self.stored) and ok_user


class _Unauthorized(Exception):
    pass


# --------------------------------------------------------------------------- live view


class LiveView:
    """What the page shows of one camera: its latest picture (in memory, never sent
    anywhere but this page), the tracked people, and line crossings counted since the
    camera's config last changed. Filled on the camera thread after each frame."""

    def __init__(self, worker: CameraWorker) -> None:
        self.worker = worker
        self.image: Any = None
        self.boxes: list[list[float]] = []
        self.counts: dict[str, dict[str, int]] = {}
        self.version: str | None = worker.config_version
        self._lock = threading.Lock()

    def after_frame(self, frame: Frame) -> None:
        pipeline: Any = self.worker.pipeline
        size = getattr(pipeline, "frame_size", None)
        tracks = getattr(pipeline, "last_tracks", None)
        with self._lock:
            if self.worker.config_version != self.version:
                self.version, self.counts = self.worker.config_version, {}
            if frame.image is not None and size is not None \
                    and frame.image.shape[1] == size[0]:
                self.image = frame.image  # a reference: each frame is a new array
            if size is not None and tracks is not None:
                w, h = size
                self.boxes = [[round(float(v), 4) for v in (b[0] / w, b[1] / h, b[2] / w,
                                                            b[3] / h)] for b in tracks.xyxy]
            for e in getattr(pipeline, "last_events", []):
                line = self.counts.setdefault(e.line, {"in": 0, "out": 0})
                line[e.direction] += 1

    def snapshot(self, width: int) -> bytes | None:
        import cv2  # OpenCV: already loaded by the pipeline

        with self._lock:
            image = self.image
        if image is None:
            return None
        h, w = image.shape[:2]
        if w > width:
            image = cv2.resize(image, (width, round(h * width / w)),
                               interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return bytes(jpeg) if ok else None

    def live(self) -> dict[str, Any]:
        with self._lock:
            return {"boxes": list(self.boxes), "counts": json.loads(json.dumps(self.counts)),
                    "config_version": self.worker.config_version,
                    "config_error": self.worker.config_error}


def current_analytics(worker: CameraWorker) -> AnalyticsConfig:
    if worker.applied is not None:
        return worker.applied.analytics
    config = getattr(worker.pipeline, "config", None)
    return config if isinstance(config, AnalyticsConfig) else AnalyticsConfig()


def installer_config(store_id: str, worker: CameraWorker, body: Any) -> CameraConfigMessage:
    """The camera's config with the page's lines and zones; ConfigError says what is wrong."""
    if not isinstance(body, dict) or set(body) - {"lines", "zones"}:
        raise ConfigError("body must be an object with 'lines' and 'zones' only")
    data = current_analytics(worker).model_dump()
    data.update({k: body[k] for k in ("lines", "zones") if k in body})
    version = "installer-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        return CameraConfigMessage(store_id=store_id, camera_id=worker.camera_id,
                                   config_version=version,
                                   analytics=AnalyticsConfig.model_validate(data))
    except ValidationError as e:
        raise ConfigError(describe_validation_error(e)) from e


# --------------------------------------------------------------------------- app


def static_files() -> dict[str, tuple[bytes, str]]:
    root = resources.files("edge.node").joinpath("installer_static")
    kinds = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8"}
    return {f.name: (f.read_bytes(), kinds[Path(f.name).suffix]) for f in root.iterdir()
            if Path(f.name).suffix in kinds}


def create_app(cfg: InstallerConfig, store_id: str, workers: dict[str, CameraWorker],
               views: dict[str, LiveView], on_save: OnSave) -> FastAPI:
    auth = BasicAuth(cfg.username, read_hash(cfg.password_hash_file))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(auth)])
    files = static_files()

    @app.exception_handler(_Unauthorized)
    async def _refused(request: Request, exc: _Unauthorized) -> Response:
        return JSONResponse({"error": "wrong user or password"}, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="storesense installer"'})

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update({"content-security-policy": CSP, "cache-control": "no-store",
                                 "x-content-type-options": "nosniff",
                                 "x-frame-options": "DENY", "referrer-policy": "no-referrer"})
        return response

    def view(camera_id: str) -> LiveView:
        if camera_id not in views:
            raise _NotFound(camera_id)
        return views[camera_id]

    @app.exception_handler(ConfigError)
    async def _invalid(request: Request, exc: ConfigError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(_NotFound)
    async def _unknown(request: Request, exc: _NotFound) -> Response:
        return JSONResponse({"error": f"unknown camera {exc.args[0]!r}"}, status_code=404)

    @app.get("/")
    def index() -> Response:
        body, kind = files["index.html"]
        return Response(body, media_type=kind)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in files:
            return JSONResponse({"error": "not found"}, status_code=404)
        body, kind = files[name]
        return Response(body, media_type=kind)

    @app.get("/api/cameras")
    def cameras() -> list[dict[str, Any]]:
        return [{"camera_id": cam, "config_version": w.config_version,
                 "lines": [x.model_dump() for x in current_analytics(w).lines],
                 "zones": [z.model_dump() for z in current_analytics(w).zones]}
                for cam, w in workers.items()]

    @app.get("/api/cameras/{camera_id}/snapshot.jpg")
    def snapshot(camera_id: str) -> Response:
        jpeg = view(camera_id).snapshot(cfg.snapshot_width)
        if jpeg is None:
            return JSONResponse({"error": "no picture yet"}, status_code=503)
        return Response(jpeg, media_type="image/jpeg")

    @app.get("/api/cameras/{camera_id}/live")
    def live(camera_id: str) -> dict[str, Any]:
        return view(camera_id).live()

    @app.put("/api/cameras/{camera_id}/config")
    async def save(camera_id: str, request: Request) -> dict[str, Any]:
        v = view(camera_id)
        msg = installer_config(store_id, v.worker, await _bounded_json(request))
        on_save(msg)
        deadline = time.monotonic() + APPLY_WAIT_S
        while v.worker.config_version != msg.config_version and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return {"config_version": msg.config_version,
                "applied": v.worker.config_version == msg.config_version,
                "config_error": v.worker.config_error}

    return app


class _NotFound(Exception):
    pass


async def _bounded_json(request: Request) -> Any:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise ConfigError(f"body larger than {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ConfigError(f"body larger than {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"body is not valid JSON: {e}") from e


class Installer:
    """The page's server in its own thread (uvicorn on a socket bound at start)."""

    def __init__(self, cfg: InstallerConfig, store_id: str, workers: dict[str, CameraWorker],
                 on_save: OnSave) -> None:
        self.views = {cam: LiveView(w) for cam, w in workers.items()}
        for cam, w in workers.items():
            w.after_frame = self.views[cam].after_frame
        app = create_app(cfg, store_id, workers, self.views, on_save)  # reads the hash now
        self.sock = socket.create_server((cfg.host, cfg.port))
        self.port: int = self.sock.getsockname()[1]
        tls = {"ssl_certfile": str(cfg.cert_file), "ssl_keyfile": str(cfg.key_file)} \
            if cfg.cert_file is not None else {}
        config = uvicorn.Config(app, log_level="warning", limit_concurrency=32,
                                timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
                                **tls)  # type: ignore[arg-type]
        try:
            config.load()  # reads the certificate now: a bad one fails at start
        except (OSError, ValueError) as e:
            self.sock.close()
            raise ConfigError(f"installer.cert_file/key_file: {e}") from e
        self.server = uvicorn.Server(config)
        self.scheme = "https" if cfg.cert_file is not None else "http"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="installer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="storesense installer page tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    hp = sub.add_parser("hash-password", help="write the installer password's scrypt hash")
    hp.add_argument("file", type=Path)
    args = ap.parse_args(argv)
    password = getpass.getpass("installer password: ")
    if len(password) < 10:
        print("error: use at least 10 characters", file=sys.stderr)
        return 1
    if getpass.getpass("again: ") != password:
        print("error: the two passwords differ", file=sys.stderr)
        return 1
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(hash_password(password) + "\n")
    print(f"wrote {args.file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
