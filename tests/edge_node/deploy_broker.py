"""Mosquitto run with deploy/mosquitto/mosquitto.conf itself, users and ACL from make_auth.py.

Only what cannot be used on a test machine is rewritten: the /etc and /var paths, the ports
(free loopback ports instead of 8883 and 1883), syslog (a file). Every other line, the
security and persistence settings above all, is the shipped one; a rewrite rule that no
longer matches the shipped file fails loudly instead of testing something else.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.brokers import Mosquitto, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
ETC = "/etc/mosquitto/storesense"


def recent_day() -> datetime:
    """Midnight UTC two days ago: window times a gateway on the real clock believes."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=2)


def make_auth(workdir: Path, devices: str, *args: str) -> dict[str, str]:
    """Run make_auth.py on a devices.csv text; returns user -> password."""
    (workdir / "devices.csv").write_text(devices)
    subprocess.run([sys.executable, str(DEPLOY / "make_auth.py"), str(workdir / "devices.csv"),
                    str(workdir / "auth"), *args], check=True, capture_output=True)
    with open(workdir / "auth" / "secrets.csv") as f:
        return {r["user"]: r["password"] for r in csv.DictReader(f)}


def make_tls(workdir: Path) -> Path:
    tls = workdir / "tls"
    if not (tls / "server.crt").exists():
        subprocess.run(["sh", str(DEPLOY / "make_tls.sh"), str(tls), "localhost", "127.0.0.1"],
                       check=True, capture_output=True)
    return tls


class DeployedMosquitto(Mosquitto):
    """deploy/mosquitto/mosquitto.conf on loopback ports, with ``workdir/auth`` from
    make_auth() and TLS files from make_tls.sh. Plain MQTT on ``port``, TLS on ``tls_port``."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "broker", allow_anonymous=False)
        self.auth, self.tls = workdir / "auth", make_tls(workdir)
        self.tls_port = free_port()

    def write_config(self) -> None:
        text = (DEPLOY / "mosquitto.conf").read_text()
        rules = [
            (rf"^password_file {ETC}/passwd$", f"password_file {self.auth}/passwd"),
            (rf"^acl_file {ETC}/acl$", f"acl_file {self.auth}/acl"),
            (rf"{ETC}/tls/", f"{self.tls}/"),
            (r"^persistence_location .*$", f"persistence_location {self.workdir}/"),
            (r"^log_dest syslog$", f"log_dest file {self.log_path}"),
            (r"^listener 8883$", f"listener {self.tls_port} 127.0.0.1"),
            (r"^listener 1883 127.0.0.1$", f"listener {self.port} 127.0.0.1"),
        ]
        for pattern, repl in rules:
            text, n = re.subn(pattern, repl, text, flags=re.M)
            assert n, f"deploy/mosquitto/mosquitto.conf no longer matches {pattern!r}"
        # Started as root Mosquitto drops to user "mosquitto", which cannot write here.
        run_as = "user root\n" if os.geteuid() == 0 else ""
        self.conf_path.write_text(run_as + text)

    def __enter__(self) -> DeployedMosquitto:
        self.start()
        return self

    def kill(self) -> None:
        """kill -9: no final save of the in-memory database."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
