"""/api/v1/config through the real app and SQLite: who may publish, what is refused and why,
history, rollback, and what each device says it runs (from its stored status)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.storage import Storage
from storesense.schema import CameraStatus, DeviceStatus
from tests.gateway.conftest import PINNED_NOW
from tests.gateway.helpers import TOPICS, store

Headers = dict[str, str]
LINE = {"name": "door", "points": [0.1, 0.5, 0.9, 0.5], "in_direction": "left_to_right"}
ZONE = {"name": "promo", "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4]], "kind": "display"}


@pytest.fixture
def api(storage: Storage) -> Iterator[tuple[TestClient, dict[str, Headers]]]:
    storage.upsert_stores([store("a1", franchisee="fa"), store("b1", franchisee="fb")])
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq ops", "hq"), ("fa", "franchisee:fa"))}
    app = create_app(GatewaySettings(), storage, clock=lambda: PINNED_NOW)
    with TestClient(app) as client:
        yield client, tokens


def _status(version: str | None, error: str | None) -> bytes:
    sent = PINNED_NOW - timedelta(seconds=5)
    return DeviceStatus(store_id="a1", device_id="box", state="online", sent_at=sent, cameras=[
        CameraStatus(camera_id="door", state="ok", since=sent, fps=10, lag_s=0,
                     frames_total=1, dropped_frames=0, config_version=version,
                     config_error=error)]).to_json()


def test_hq_publishes_versions_and_rolls_back(api, storage: Storage) -> None:
    client, tok = api
    r1 = client.put("/api/v1/config/a1/door", json={"analytics": {"lines": [LINE]}},
                    headers=tok["hq ops"])
    assert r1.status_code == 201, r1.text
    body = r1.json()
    assert (body["version"], body["config_version"], body["source"], body["created_by"]) == (
        1, "hq-1", "hq", "hq ops")
    assert body["analytics"]["lines"][0]["points"] == LINE["points"]
    # no broker connection in this app: stored, not published, and said so
    assert body["published"] is False and "does not publish" in body["not_published_because"]
    r2 = client.put("/api/v1/config/a1/door",
                    json={"analytics": {"lines": [LINE], "zones": [ZONE], "window_s": 30}},
                    headers=tok["hq ops"])
    assert r2.json()["version"] == 2
    back = client.post("/api/v1/config/a1/door/rollback", json={"version": 1},
                       headers=tok["hq ops"])
    assert back.status_code == 201, back.text
    b = back.json()
    assert (b["version"], b["source"], b["rollback_of"], b["config_version"]) == (
        3, "rollback", 1, "hq-3")
    assert b["analytics"] == r1.json()["analytics"]
    hist = client.get("/api/v1/config/a1/door", headers=tok["fa"]).json()["history"]
    assert [h["version"] for h in hist] == [3, 2, 1]
    assert hist[1]["analytics"]["zones"][0]["name"] == "promo"


def test_running_versions_and_rejections_come_from_the_device_status(
        api, storage: Storage) -> None:
    client, tok = api
    for _ in range(2):
        client.put("/api/v1/config/a1/door", json={"analytics": {"lines": [LINE]}},
                   headers=tok["hq ops"])
    storage.ingest([(TOPICS.status("a1", "box"), _status("hq-1", "config 'hq-2' not applied: "
                                                         "model missing"))])
    run = client.get("/api/v1/config/a1/door", headers=tok["hq ops"]).json()["running"]
    assert [(r["device_id"], r["camera_id"], r["config_version"], r["version"],
             r["config_error"]) for r in run] == [
        ("box", "door", "hq-1", 1, "config 'hq-2' not applied: model missing")]
    cams = client.get("/api/v1/config/a1", headers=tok["fa"]).json()["cameras"]
    assert [(c["camera_id"], (c["latest"] or {}).get("version"), len(c["running"]))
            for c in cams] == [("door", 2, 1), ("floor", None, 0)]


@pytest.mark.parametrize(("who", "method", "path", "body", "status", "detail"), [
    ("fa", "put", "/config/a1/door", {"analytics": {}}, 403, "hq token"),
    ("fa", "post", "/config/a1/door/rollback", {"version": 1}, 403, "hq token"),
    ("fa", "get", "/config/b1/door", None, 403, "outside scope"),
    ("hq ops", "put", "/config/zz/door", {"analytics": {}}, 404, "unknown store"),
    ("hq ops", "put", "/config/a1/nope", {"analytics": {}}, 404, "no camera 'nope'"),
    ("hq ops", "put", "/config/a1/door", {"lines": []}, 422, '{"analytics"'),
    ("hq ops", "put", "/config/a1/door", {"analytics": {"window_s": 5}}, 422,
     "analytics.window_s"),
    ("hq ops", "put", "/config/a1/door", {"analytics": {"lines": [
        {"name": "l", "points": [0.5, 0.5, 0.5, 0.5]}]}}, 422, "analytics.lines.0"),
    ("hq ops", "post", "/config/a1/door/rollback", {"version": 7}, 404, "no version 7"),
    ("hq ops", "post", "/config/a1/door/rollback", {"version": "1"}, 422, '{"version"'),
])
def test_refusals_say_why_and_store_nothing(api, storage: Storage, who: str, method: str,
                                            path: str, body: object, status: int,
                                            detail: str) -> None:
    client, tok = api
    r = client.request(method.upper(), "/api/v1" + path, json=body, headers=tok[who])
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert storage.read().execute("SELECT COUNT(*) FROM camera_config_history").fetchone()[0] == 0


def test_history_rows_are_stamped_by_the_gateways_clock(api) -> None:
    client, tok = api
    r = client.put("/api/v1/config/a1/door", json={"analytics": {}}, headers=tok["hq ops"])
    assert r.json()["created_at"] == PINNED_NOW.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert datetime.fromisoformat(r.json()["created_at"].replace("Z", "+00:00")) == PINNED_NOW
