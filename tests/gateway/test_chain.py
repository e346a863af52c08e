"""Several gateways, one chain: two `gateway run` processes in one MQTT 5 shared-subscription
group write to one real PostgreSQL; the API of either answers for the whole chain; a window
delivered to both is stored once; one is killed with SIGKILL mid-run and loses nothing."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gateway.auth import create_token
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port
from tests.gateway.helpers import message, recent_day, store, window
from tests.gateway.mqtt_helpers import count, publish_all, start_gateway, stop, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
T0 = recent_day()
STORES = [f"c{i}" for i in range(40)]


def _messages(n: int) -> list[tuple[str, bytes]]:
    return [message(window(STORES[i % len(STORES)],
                           T0 + timedelta(minutes=i // len(STORES)), ins=2, outs=1))
            for i in range(n)]


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_gateways_one_postgresql_store_once_survive_sigkill_and_answer_for_the_chain(
    broker: Mosquitto, tmp_path: Path, postgres_server: object,
) -> None:
    url = postgres_server.new_database_url()  # type: ignore[attr-defined]
    s = Storage(url)
    s.upsert_stores([store(sid) for sid in STORES])
    token = create_token(s, "hq", "hq")
    s.close()
    ports = [free_port(), free_port()]
    configs = [write_config(tmp_path / f"gw{i}.toml", broker, url, f"chain-{i}",
                            group="chain", api_port=ports[i]) for i in range(2)]
    logs = [tmp_path / f"gw{i}.log" for i in range(2)]
    procs = [start_gateway(configs[i], logs[i], api=True) for i in range(2)]
    n = 6000
    msgs = _messages(n)
    try:
        for log in logs:
            wait_until(lambda log=log: "subscribed" in log.read_text(), 30, f"{log} subscribed")
        publish_all(broker, msgs[: n // 2], client_id="pub1")
        wait_until(lambda: count(url, "SELECT COUNT(*) FROM windows") > 500, 60, "ingest")
        procs[0].send_signal(signal.SIGKILL)  # mid-run: its unacked share stays queued
        procs[0].wait(10)
        # the rest, and every window a second time: copies land on either gateway
        publish_all(broker, msgs[n // 2:] + msgs, client_id="pub2")
        procs[0] = start_gateway(configs[0], logs[0], api=True)
        wait_until(lambda: count(url, "SELECT COUNT(*) FROM windows") == n, 120,
                   f"all {n} windows")
        for i, log in enumerate(logs):  # both took a share of the group
            wait_until(lambda log=log: "subscribed" in log.read_text(), 30, f"gateway {i}")
        assert count(url, "SELECT COUNT(DISTINCT message_id) FROM windows") == n
        assert count(url, "SELECT SUM(in_count) FROM rollup_day") == 2 * n  # nothing twice
        assert count(url, "SELECT SUM(windows) FROM rollup_hour") == n
        assert count(url, "SELECT COUNT(*) FROM dead_letters") == 0
        h = {"Authorization": f"Bearer {token}"}
        answers = []
        for port in ports:
            api = f"http://127.0.0.1:{port}/api/v1"
            wait_until(lambda api=api: _up(api), 30, "API")
            day = T0.date().isoformat()
            series = httpx.get(f"{api}/traffic?granularity=day&start={day}&end={day}",
                               headers=h, timeout=10).json()["series"]
            answers.append(sum(p["in"] for p in series))
        assert answers == [2 * n, 2 * n]  # either gateway answers for the whole chain
    finally:
        for p in procs:
            stop(p)


@pytest.mark.parametrize("url, says", [
    ("mysql://db/storesense", "expected a PostgreSQL URL"),
    ("postgresql://nobody@/storesense?host=/nonexistent-socket-dir", "cannot use"),
])
def test_a_bad_database_url_fails_the_start_naming_the_field(
    tmp_path: Path, url: str, says: str,
) -> None:
    import subprocess
    import sys

    config = tmp_path / "gw.toml"
    config.write_text(f'database_url = "{url}"\n')
    run = subprocess.run([sys.executable, "-m", "storesense.cli", "gateway", "run", "--config",
                          str(config)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "database_url" in run.stderr and says in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
