"""The demo's preparation steps: database with registry, history, POS and tokens; config files
for the gateway and the edge nodes. Kept apart from the process handling in demo.py."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from models.registry import default_models_dir, resolve
from storesense.errors import ModelError
from storesense.progress import Progress
from storesense.schema import utcnow
from storesense.simulate import DEMO_STORES, DemoStore

DEMO_TOKENS = {
    "HQ (all stores)": "hq",
    "franchisee huadong-retail": "franchisee:huadong-retail",
    "region Europe": "region:Europe",
}


def _q(s: str | Path) -> str:
    """A TOML basic string (JSON's escaping is a subset TOML accepts)."""
    return json.dumps(str(s), ensure_ascii=False)


def prepare_database(workdir: Path, weeks: int) -> dict[str, str]:
    """Registry + seeded history (once per workdir) and fresh demo tokens (every run)."""
    from gateway.auth import create_token, revoke_token
    from gateway.seed import seed_demo
    from gateway.storage import Storage

    storage = Storage(workdir / "gateway.db")
    try:
        marker = workdir / "seeded"
        if not marker.exists():
            end = utcnow().replace(minute=0, second=0, microsecond=0)
            days = weeks * 7
            with Progress(f"seeding {weeks} weeks of simulated history", days) as bar:
                for day in range(days, 0, -1):
                    day_end = end - timedelta(days=day - 1)
                    seed_demo(storage, day_end, 1)
                    bar.update()
            marker.write_text(end.isoformat())
        tokens = {}
        for name, scope in DEMO_TOKENS.items():
            revoke_token(storage, name)
            tokens[name] = create_token(storage, name, scope)
        return tokens
    finally:
        storage.close()


def _protocol(mqtt5: bool) -> str:
    """The [mqtt]/[broker] protocol line: the embedded broker speaks MQTT 3.1.1 only."""
    return "" if mqtt5 else 'protocol = "3.1.1"\n'


def write_gateway_config(
    workdir: Path, mqtt_host: str, mqtt_port: int, api_host: str, api_port: int, mqtt5: bool,
) -> Path:
    path = workdir / "gateway.toml"
    path.write_text(
        f"db = {_q(workdir / 'gateway.db')}\n"
        "status_interval_s = 5\n"
        "[mqtt]\n"
        f"host = {_q(mqtt_host)}\nport = {mqtt_port}\n"
        "client_id = \"demo-gateway\"\n"
        + _protocol(mqtt5) +
        "[api]\n"
        f"host = {_q(api_host)}\nport = {api_port}\n",
        encoding="utf-8",
    )
    return path


def write_edge_config(
    workdir: Path, store: DemoStore, video: str, mqtt_host: str, mqtt_port: int, window_s: int,
    demographics: bool = True, mqtt5: bool = True, detector: str = "auto", reid: bool = True,
) -> Path:
    node_dir = workdir / f"edge-{store.store_id}"
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / "edge.toml"
    path.write_text(
        f"store_id = {_q(store.store_id)}\n"
        f"device_id = {_q('edge-' + store.store_id)}\n"
        f"state_dir = {_q(node_dir)}\n"
        f"models_dir = {_q(default_models_dir())}\n"
        "status_interval_s = 5\n"
        f"demographics = {str(demographics).lower()}\n"
        "[broker]\n"
        f"host = {_q(mqtt_host)}\nport = {mqtt_port}\n"
        + _protocol(mqtt5) +
        "[outbox]\nreplay_rate = 200\n"
        f"[detector]\nmodel = {_q(detector)}\n"
        "[[cameras]]\n"
        "camera_id = \"entrance\"\n"
        f"source = {_q(video)}\n"
        "loop = true\nrealtime = true\n"
        "[cameras.analytics]\n"
        f"window_s = {window_s}\n"
        f"[cameras.analytics.identity]\nreid = {str(reid).lower()}\n"
        "[[cameras.analytics.lines]]\n"
        "name = \"door\"\npoints = [0.5, 0.0, 0.5, 1.0]\n",
        encoding="utf-8",
    )
    return path


def missing_models(names: list[str]) -> list[str]:
    """Why each of these models cannot be loaded from the default directory (empty: all can)."""
    reasons = []
    for name in names:
        try:
            resolve(name)
        except ModelError as e:
            reasons.append(str(e))
    return reasons


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


__all__ = ["DEMO_STORES", "prepare_database", "wait_http", "write_edge_config",
           "write_gateway_config"]
