"""/api/v1/alerts through the real app and SQLite: listing within a token's scope, and the
occupancy limits HQ sets."""

from __future__ import annotations

from gateway import alerts_store
from gateway.alerts import Alert, Changes
from gateway.storage import Storage
from tests.gateway.test_config_api import api

__all__ = ["api"]  # the fixture: stores a1 (franchisee fa) and b1, tokens "hq ops" and "fa"


def test_occupancy_limits_hq_sets_scope_reads(api, storage: Storage) -> None:
    client, tok = api
    r = client.put("/api/v1/alerts/limits/a1", json={"occupancy_limit": 80},
                   headers=tok["hq ops"])
    assert r.status_code == 200, r.text
    client.put("/api/v1/alerts/limits/b1", json={"occupancy_limit": 20}, headers=tok["hq ops"])
    assert client.get("/api/v1/alerts/limits", headers=tok["fa"]).json() == {"a1": 80}
    assert client.put("/api/v1/alerts/limits/a1", json={"occupancy_limit": 0},
                      headers=tok["hq ops"]).status_code == 422
    assert client.put("/api/v1/alerts/limits/a1", json={"occupancy_limit": 5},
                      headers=tok["fa"]).status_code == 403
    client.put("/api/v1/alerts/limits/a1", json={"occupancy_limit": None}, headers=tok["hq ops"])
    assert client.get("/api/v1/alerts/limits", headers=tok["hq ops"]).json() == {"b1": 20}


def test_alerts_are_listed_within_scope(api, storage: Storage) -> None:
    client, tok = api
    with storage.transaction() as conn:
        alerts_store.apply(conn, Changes(raised=(
            Alert("device_offline", "a1", "box", {"minutes": 12}),
            Alert("device_offline", "b1", "box", {"minutes": 30}))), "2026-11-24T10:00:00Z")
    mine = client.get("/api/v1/alerts", headers=tok["fa"]).json()
    assert [(a["store_id"], a["kind"], a["detail"]) for a in mine] == [
        ("a1", "device_offline", {"minutes": 12})]
    assert len(client.get("/api/v1/alerts?state=open", headers=tok["hq ops"]).json()) == 2
    assert client.get("/api/v1/alerts?state=resolved", headers=tok["hq ops"]).json() == []
    assert client.get("/api/v1/alerts?store_id=b1", headers=tok["fa"]).status_code == 403
