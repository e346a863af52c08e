"""Real-broker helpers: a QoS 1 publisher, gateway subprocesses, bounded waits on the database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from gateway.db import connect
from storesense.broker import Mosquitto, free_port


def publish_all(broker: Mosquitto, messages: Iterable[tuple[str, bytes]],
                timeout: float = 60.0, client_id: str = "test-publisher",
                properties: Properties | None = None) -> int:
    """Publish at QoS 1 and wait until the broker acknowledged every message."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(broker.host, broker.port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1, properties=properties) for t, p in messages]
    deadline = time.monotonic() + timeout
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        assert info.is_published(), "broker did not acknowledge a publish in time"
    c.disconnect()
    c.loop_stop()
    return len(infos)


def count(db: Path | str, sql: str) -> int:
    """One figure from a gateway's database: a SQLite file or a PostgreSQL URL."""
    if isinstance(db, str):
        conn = connect(db)
        try:
            return int(conn.execute(sql).fetchone()[0] or 0)
        finally:
            conn.close()
    if not db.exists():
        return 0
    lite = sqlite3.connect(str(db), timeout=30)
    try:
        return int(lite.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        lite.close()


def write_config(path: Path, broker: Mosquitto, db: Path | str, client_id: str,
                 group: str | None = None, api_port: int | None = None,
                 protocol: str | None = None) -> Path:
    where = f'database_url = "{db}"' if isinstance(db, str) else f'db = "{db}"'
    lines = [where, "[mqtt]", f'host = "{broker.host}"', f"port = {broker.port}",
             f'client_id = "{client_id}"']
    if protocol:
        lines.append(f'protocol = "{protocol}"')
    if group:
        lines.append(f'shared_group = "{group}"')
    lines += ["[api]", f"port = {api_port or free_port()}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_gateway(config: Path, log: Path, api: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "storesense.cli", "gateway", "run", "--config", str(config)]
    return subprocess.Popen([*args] if api else [*args, "--no-api"],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
