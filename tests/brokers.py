"""A real Mosquitto for tests: started on a free loopback port, stoppable and restartable.

Persistence is on (in the test's temp dir) so persistent sessions and queued QoS 1 messages
survive a broker restart, as on a production broker.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    raise RuntimeError(
        "mosquitto is not installed; `make test` installs it (apt-get install mosquitto)"
    )


class Mosquitto:
    """One broker process. ``extra`` is appended to the generated config (ACL, TLS, ...)."""

    def __init__(self, workdir: Path, extra: str = "", allow_anonymous: bool = True) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.extra = extra
        self.allow_anonymous = allow_anonymous
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        anon = "true" if self.allow_anonymous else "false"
        self.conf_path.write_text(
            f"per_listener_settings false\n"
            f"allow_anonymous {anon}\n"
            f"persistence true\n"
            f"persistence_location {self.workdir}/\n"
            f"autosave_interval 1\n"
            f"max_queued_messages 0\n"
            f"max_inflight_messages 0\n"
            f"log_dest file {self.log_path}\n"
            f"listener {self.port} {self.host}\n"
            f"{self.extra}\n"
        )

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.write_config()
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited: {err}\n{log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
