"""/api/v1/health reflects ingest: a gateway without its broker says so, and recovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from storesense.broker import Mosquitto, free_port
from storesense.topics import Topics
from tests.gateway.helpers import window
from tests.gateway.mqtt_helpers import publish_all, start_gateway, stop
from tests.waiting import wait_until


def _health(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_health_is_degraded_without_the_broker_and_ok_once_it_is_there(tmp_path: Path) -> None:
    broker_port, api_port = free_port(), free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'db = "{tmp_path / "gw.db"}"\n[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n'
        f'client_id = "gw-health"\n[api]\nport = {api_port}\n'
    )
    log = tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{api_port}/api/v1/health"
    gateway = start_gateway(config, log, api=True)
    broker = Mosquitto(tmp_path / "broker", port=broker_port)
    try:
        wait_until(lambda: _health(url) is not None, 60, "the gateway's API to answer")
        answer = _health(url)
        assert answer is not None and answer.status_code == 503, answer
        body = answer.json()
        assert body["status"] == "degraded" and body["ingest"]["broker_connected"] is False
        assert body["ingest"]["last_message_age_s"] is None
        wait_until(lambda: "cannot reach the broker" in log.read_text(), 20, "a log line")

        broker.start()
        wait_until(lambda: (r := _health(url)) is not None and r.status_code == 200, 30,
                   "health to turn ok once the broker is there")
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
        publish_all(broker, [(Topics().aggregate("s1", "door"), window("s1", start).to_json())])
        wait_until(lambda: (r := _health(url)) is not None
                   and r.json()["ingest"]["last_message_age_s"] is not None, 20,
                   "the age of the last message")
        assert log.read_text().count("cannot reach the broker") == 1  # once, not every retry
    finally:
        stop(gateway)
        broker.stop()
