"""No input stops the gateway: fuzzed and malformed payloads are all dead-lettered."""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

from gateway.auth import create_token
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port
from storesense.schema import MessageError, WindowAggregate
from tests.gateway.helpers import TOPICS, message, recent_day, store, window
from tests.gateway.mqtt_helpers import (
    count,
    publish_all,
    start_gateway,
    stop,
    write_config,
)
from tests.waiting import wait_until

T0 = recent_day() + timedelta(hours=10)  # the gateway run below is on the real clock
GOOD_TOPIC, GOOD_RAW = message(window("s1", T0))
GOOD = json.loads(GOOD_RAW)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=5),
    max_leaves=20,
)
# a valid window with one field replaced by anything: the near misses a validator must catch
mutated = st.builds(lambda k, v: json.dumps({**GOOD, k: v}).encode(),
                    st.sampled_from(sorted(GOOD)), json_values)
payloads = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | mutated
topics = st.sampled_from([GOOD_TOPIC, TOPICS.aggregate("s1", "x"), TOPICS.status("s1", "d"),
                          "storesense/v1/s1/door", "other/s1/door/agg"])


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """Its clock a day after T0, so that the valid window is believable (plausible.py)."""
    s = Storage(tmp_path / "gateway.db", clock=lambda: T0 + timedelta(days=1))
    yield s
    s.close()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(topics, payloads), min_size=1, max_size=20))
def test_ingest_accounts_for_every_message(storage: Storage,
                                           batch: list[tuple[str, bytes]]) -> None:
    storage.upsert_stores([store("s1")])
    r = storage.ingest(batch)
    assert r.stored + r.duplicates + r.dead == len(batch)
    # only messages equal to a valid window can be stored; mutations that stay valid are ok
    assert r.stored <= 1


def _families(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    def doc(**kw: Any) -> bytes:
        return json.dumps({**GOOD, **kw}).encode()

    makers = [
        lambda i: (GOOD_TOPIC, GOOD_RAW[: rng.randrange(1, len(GOOD_RAW) - 1)]),  # bad JSON
        lambda i: (GOOD_TOPIC, doc(schema_version=rng.choice([0, 2, "1", None]))),
        lambda i: (GOOD_TOPIC, doc(frames=-rng.randrange(1, 10**6))),  # negative count
        lambda i: (GOOD_TOPIC, doc(lines=[{"line": "d", "in_count": 10**rng.randrange(8, 40),
                                           "out_count": 0}])),  # huge numbers
        lambda i: message(window(f"unknown{i}", T0 + timedelta(minutes=i))),  # unknown store
        lambda i: (GOOD_TOPIC, doc(occupancy=rng.choice(["x", [], 3, {"avg": "a"}]))),
        lambda i: (GOOD_TOPIC, rng.randbytes(rng.randrange(1, 600))),  # binary junk
        lambda i: (TOPICS.aggregate("s1", "elsewhere"), GOOD_RAW),  # topic/payload mismatch
        lambda i: (GOOD_TOPIC, doc(window_end=GOOD["window_start"])),  # impossible window
        lambda i: (GOOD_TOPIC, doc(extra_field=i)),
    ]
    return [makers[i % len(makers)](i) for i in range(n)]


def _invalid(raw: bytes) -> bool:
    try:
        WindowAggregate.from_json(raw)
    except MessageError:
        return True
    return False  # a mutation that happens to stay valid (e.g. simulated=True)


def _hypothesis_examples(n: int) -> list[tuple[str, bytes]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        pick = st.one_of(st.binary(min_size=1, max_size=300), mutated.filter(_invalid))
        return [(GOOD_TOPIC, b"\0" + pick.example()) if i % 2 else
                (GOOD_TOPIC, pick.example()) for i in range(n)]


ACCOUNTED = ("SELECT (SELECT COUNT(*) FROM dead_letters) + "
             "(SELECT COALESCE(SUM(count), 0) FROM dead_letter_counts)")


@pytest.mark.broker
def test_10000_malformed_payloads_are_dead_lettered_and_api_keeps_serving(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    db = tmp_path / "g.db"
    s = Storage(db)
    s.upsert_stores([store("s1")])
    token = create_token(s, "hq", "hq")
    s.close()
    port = free_port()
    config = write_config(tmp_path / "gw.toml", broker, db, "gw-fuzz", api_port=port)
    gw = start_gateway(config, tmp_path / "gw.log", api=True)
    try:
        wait_until(lambda: "subscribed" in (tmp_path / "gw.log").read_text(), 20, "subscribe")
        bad = _families(random.Random(5), 9000) + _hypothesis_examples(1000)
        publish_all(broker, bad)
        # a flood from one topic stores a minute's budget of letters, and counts the rest
        wait_until(lambda: count(db, ACCOUNTED) >= len(bad), 90,
                   "every malformed payload dead-lettered or counted")
        assert count(db, ACCOUNTED) == len(bad)
        stored = count(db, "SELECT COUNT(*) FROM dead_letters")
        assert stored < len(bad) // 2
        assert count(db, "SELECT COUNT(*) FROM windows") == 0
        publish_all(broker, [message(window("s1", T0))])  # and a good one is still stored
        wait_until(lambda: count(db, "SELECT COUNT(*) FROM windows") == 1, 20, "good window")
        assert gw.poll() is None
        h = {"Authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/api/v1"
        wait_until(lambda: _up(url), 20, "API")
        dl = httpx.get(f"{url}/deadletters?limit=10000", headers=h, timeout=10).json()
        assert len(dl) == stored and all(d["reason"] for d in dl)
        reasons = " ".join(d["reason"] for d in dl)
        for needle in ("JSON is malformed", "schema_version", "unknown store", "payload says",
                       "window_end", "unknown field"):
            assert needle in reasons, needle
        day = T0.date().isoformat()
        series = httpx.get(f"{url}/traffic?granularity=day&start={day}&end={day}",
                           headers=h, timeout=10).json()["series"]
        assert series[0]["visitors"] == 3
    finally:
        stop(gw)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
