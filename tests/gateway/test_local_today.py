"""Requests without dates answer for the stores' local today, not the UTC date.

At 22:30 UTC on 23 November it is already the 24th in Tokyo: a chain whose stores are all in
Tokyo must see the 24th as today (before, the multi-store endpoints took the UTC date, the
23rd, for nine hours of every Tokyo day), and a chain over Tokyo and London sees both todays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.storage import Storage
from tests.gateway.helpers import store, window

NOW = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # Tokyo 07:30 on the 24th, London 22:30
SERIES = ["/api/v1/traffic", "/api/v1/conversion", "/api/v1/visitors", "/api/v1/members"]


@pytest.fixture
def client(storage: Storage) -> Iterator[tuple[TestClient, dict[str, str]]]:
    storage.upsert_stores([store("tyo1", tz="Asia/Tokyo", region="Kanto"),
                           store("tyo2", tz="Asia/Tokyo", region="Kanto"), store("ldn")])
    # one window each in Tokyo's early morning of the 24th, and London's evening of the 23rd
    storage.store_windows([window("tyo1", NOW - timedelta(minutes=30), ins=5),
                           window("tyo2", NOW - timedelta(minutes=30), ins=7),
                           window("ldn", NOW - timedelta(minutes=30), ins=11)])
    auth = {"Authorization": f"Bearer {create_token(storage, 'hq', 'hq')}"}
    with TestClient(create_app(GatewaySettings(), storage, clock=lambda: NOW)) as c:
        yield c, auth


def _span(body: dict[str, object]) -> tuple[object, object]:
    return body["start"], body["end"]


@pytest.mark.parametrize("path", SERIES)
def test_a_chain_in_one_zone_gets_its_local_today(
    client: tuple[TestClient, dict[str, str]], path: str
) -> None:
    c, auth = client
    body = c.get(path, headers=auth, params={"region": "Kanto"}).json()
    assert _span(body) == ("2026-11-24", "2026-11-24")


@pytest.mark.parametrize("path", SERIES)
def test_a_chain_over_zones_gets_every_stores_today(
    client: tuple[TestClient, dict[str, str]], path: str
) -> None:
    c, auth = client
    assert _span(c.get(path, headers=auth).json()) == ("2026-11-23", "2026-11-24")
    london = c.get(path, headers=auth, params={"store_id": "ldn"}).json()
    assert _span(london) == ("2026-11-23", "2026-11-23")
    asked = c.get(path, headers=auth, params={"start": "2026-11-22"}).json()
    assert _span(asked) == ("2026-11-22", "2026-11-22")


def test_todays_traffic_of_a_tokyo_chain_is_in_the_default_answer(
    client: tuple[TestClient, dict[str, str]]
) -> None:
    c, auth = client
    body = c.get("/api/v1/traffic", headers=auth,
                 params={"region": "Kanto", "granularity": "day"}).json()
    assert sum(p["in"] for p in body["series"]) == 5 + 7


def test_weather_defaults_to_the_days_over_for_every_store(
    client: tuple[TestClient, dict[str, str]]
) -> None:
    c, auth = client
    tokyo = c.get("/api/v1/weather/compare", headers=auth, params={"region": "Kanto"}).json()
    assert _span(tokyo) == ("2026-10-27", "2026-11-23")
    both = c.get("/api/v1/weather/compare", headers=auth).json()
    assert _span(both) == ("2026-10-26", "2026-11-22")
    store_days = c.get("/api/v1/stores/tyo1/weather", headers=auth).json()
    assert _span(store_days) == ("2026-10-27", "2026-11-23")
