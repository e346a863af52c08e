"""`gateway run` reads the HQ overview's units in the background when it starts
(gateway/overview_warmup.py): a real gateway process on each engine logs what it read, and
its overview answers as one computed with nothing kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from gateway import overview as ov
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.period_cache import PeriodCache
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port
from storesense.schema import utcnow
from tests.gateway.helpers import recent_day, store, window
from tests.gateway.mqtt_helpers import start_gateway, stop, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.broker


def _warmed(log: Path) -> int | None:
    for line in log.read_text().splitlines():
        if "overview warm-up:" in line:
            return int(line.split("overview warm-up:")[1].split()[0])
    return None


def _get(url: str, h: dict[str, str]) -> dict[str, Any] | None:
    try:
        r = httpx.get(url, headers=h, timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_a_started_gateway_warms_the_overview(broker: Mosquitto, database: str | Path,
                                              tmp_path: Path) -> None:
    s = Storage(database)
    s.upsert_stores([store("ldn"), store("tyo", tz="Asia/Tokyo")])
    t0 = recent_day()
    s.store_windows([window(sid, t0 + timedelta(hours=h), ins=h + 1, span_s=3600)
                     for sid in ("ldn", "tyo") for h in range(0, 40, 3)])
    token = create_token(s, "hq", "hq")
    s.close()
    port = free_port()
    conf = write_config(tmp_path / "gw.toml", broker, database, "warm-gw", api_port=port)
    log = tmp_path / "gw.log"
    proc = start_gateway(conf, log, api=True)
    try:
        wait_until(lambda: _warmed(log) is not None or proc.poll() is not None, 60,
                   "the warm-up's log line")
        assert "warm-up failed" not in log.read_text()
        assert (_warmed(log) or 0) > 0, log.read_text()
        h = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/api/v1/overview?days=7"
        body: dict[str, Any] | None = None

        def answered() -> bool:
            nonlocal body
            body = _get(url, h)
            return body is not None

        wait_until(answered, 20, "the overview")
    finally:
        stop(proc)
    assert body is not None
    check = Storage(database, clock=utcnow)
    try:
        reg = check.reload_registry()
        # computed again with nothing kept, at the time the gateway answered (same minute
        # unless a minute turned in between: then the comparison's cut may differ)
        want = msgspec.json.decode(msgspec.json.encode(ov.overview(
            check.read(), reg, sorted(reg.stores), None, 28, utcnow(),
            GatewaySettings().status_interval_s, 7, PeriodCache())))
    finally:
        check.close()
    assert [x["store_id"] for x in body["stores"]] == ["ldn", "tyo"]
    assert [x["visitors"] for x in body["stores"]] == [x["visitors"] for x in want["stores"]]
    assert body["trend"] == want["trend"]
