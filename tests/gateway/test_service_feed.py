"""`gateway run` with a [feed] section: windows published to a REAL Mosquitto end up in the
data-lake export files, once each, through the service's own feed thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.storage import Storage
from storesense.broker import Mosquitto
from tests.gateway.helpers import message, store, window
from tests.gateway.mqtt_helpers import publish_all, start_gateway, stop, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def exported_ids(lake: Path) -> list[str]:
    ids = []
    for f in sorted(lake.glob("windows/dt=*/part-*.jsonl")):
        ids += [json.loads(line)["message_id"] for line in f.read_text().splitlines()]
    return ids


def test_gateway_service_runs_the_feed_export(broker: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    s = Storage(db)
    s.upsert_stores([store("s1"), store("s2")])
    s.close()
    lake = tmp_path / "lake"
    conf = write_config(tmp_path / "gateway.toml", broker, db, "feed-test-gw")
    conf.write_text(conf.read_text() + f'[feed]\nexport_dir = "{lake}"\n'
                    'export_format = "jsonl"\nexport_interval_s = 0.2\n')
    msgs = [message(window(sid, T0 + timedelta(minutes=i), ins=i, outs=0))
            for i in range(30) for sid in ("s1", "s2")]
    proc = start_gateway(conf, tmp_path / "gw.log", api=True)
    try:
        # the session must exist before publishing, or the broker has nowhere to queue
        log = tmp_path / "gw.log"
        wait_until(lambda: "subscribed" in log.read_text(), 20, "subscribe")
        publish_all(broker, msgs)
        publish_all(broker, msgs[:10], client_id="redeliverer")  # duplicates collapse
        wait_until(lambda: len(exported_ids(lake)) >= len(msgs), 60, "export of all windows")
    finally:
        stop(proc)
    ids = exported_ids(lake)
    assert len(ids) == len(set(ids)) == len(msgs)
    assert (lake / "windows" / "dt=2026-11-23").is_dir()
