"""MQTT brokers the product starts itself: Mosquitto for the demo, benchmarks and tests, and an
embedded pure-Python broker (amqtt) so the demo still runs on a machine without Mosquitto.

Production deployments run their own broker (deploy/mosquitto/ or an EMQX cluster); nothing
here is meant for a store or HQ data centre.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    return None


def wait_listening(host: str, port: int, timeout: float, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"broker process exited before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {host}:{port} within {timeout}s")


class Mosquitto:
    """One Mosquitto process on a loopback port. ``extra`` is appended to its config (ACL, TLS).

    Persistence is on, so persistent sessions and queued QoS 1 messages survive a restart,
    as on a production broker.
    """

    kind = "mosquitto"

    def __init__(
        self, workdir: Path, extra: str = "", allow_anonymous: bool = True,
        port: int | None = None, host: str = "127.0.0.1",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = host
        self.extra = extra
        self.allow_anonymous = allow_anonymous
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        anon = "true" if self.allow_anonymous else "false"
        # Started as root, Mosquitto drops to user "mosquitto", which cannot write a private
        # work dir: its log and persistence (sessions across a restart) would silently fail.
        run_as = "user root\n" if os.geteuid() == 0 else ""
        self.conf_path.write_text(
            run_as +
            "per_listener_settings false\n"
            f"allow_anonymous {anon}\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"log_dest file {self.log_path}\n"
            f"listener {self.port} {self.host}\n"
            f"{self.extra}\n"
        )

    def start(self, timeout: float = 10.0) -> Mosquitto:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.write_config()
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        proc = self.proc
        try:
            wait_listening(self.host, self.port, timeout, alive=lambda: proc.poll() is None)
        except RuntimeError as e:
            err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
            logtext = self.log_path.read_text() if self.log_path.exists() else ""
            self.stop()
            raise RuntimeError(f"{e}: {err}\n{logtext[-2000:]}") from e
        return self

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


class EmbeddedBroker:
    """amqtt in a background thread: MQTT 3.1.1 only, anonymous, no persistence."""

    kind = "embedded (amqtt, MQTT 3.1.1, no persistence)"

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        from amqtt.broker import Broker

        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {
                    "allow_anonymous": True}},
            }

            async def boot() -> None:
                self._broker = Broker(config)
                await self._broker.start()

            try:
                loop.run_until_complete(boot())
            except BaseException as e:  # surfaced to start()
                errors.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="embedded-broker", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        if errors:
            raise RuntimeError(f"embedded broker failed to start: {errors[0]}") from errors[0]
        wait_listening(self.host, self.port, timeout)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
        try:
            fut.result(10)
        except Exception as e:  # shutting down anyway
            log.warning("embedded broker shutdown: %s", e)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)
        self._broker = None
