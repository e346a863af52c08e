"""Hostile input to the REST API on real storage (issue 18): every bad value is a 4xx naming
what is wrong, never a 500 and never stored."""

from __future__ import annotations

import json
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.floorplan import MAX_PLAN_SIDE
from gateway.storage import Storage
from tests.gateway import test_api

api = test_api.api  # the fixture of test_api.py: three stores, windows, scoped tokens

API = "/api/v1"
STORE = {"name": "C", "timezone": "Europe/Paris"}


def _png(w: int = 40, h: int = 30) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((h, w, 3), 200, np.uint8))
    assert ok
    return buf.tobytes()


def _jpeg(w: int = 40, h: int = 30) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 200, np.uint8))
    assert ok
    return buf.tobytes()


def _put_raw(client: TestClient, h: dict[str, str], path: str, text: str):
    return client.put(path, headers={**h, "Content-Type": "application/json"}, content=text)


def _refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    for w in words:
        assert w in detail, (w, detail)


@pytest.mark.parametrize("path", [
    "/overview?date=0001-01-01", "/overview?date=9999-12-31",
    "/traffic?granularity=minute&start=9999-12-31",
    "/traffic?granularity=minute&start=0001-01-01",
    "/traffic?granularity=hour&end=9999-12-31",
    "/conversion?start=0001-01-01", "/stores/a1/zones?end=9999-12-31",
    "/stores/a1/heatmap?start=0001-01-01", "/stores/a1/demographics?start=9999-12-31",
])
def test_dates_at_the_ends_of_the_calendar_are_a_4xx_naming_the_parameter(api, path) -> None:
    client, tok = api
    r = client.get(API + path, headers=tok["hq"])
    _refused(r, 422, "date must be between")
    assert path.split("?")[1].split("&")[-1].split("=")[0] in r.json()["detail"]


# Query values a browser or a probe may send, per parameter: mostly well-formed (so that a
# request gets past the other parameters' checks), with the calendar's ends, numbers out of
# range and any text mixed in.
_junk = st.text(max_size=16)
_dates = st.one_of(st.sampled_from(["0001-01-01", "0001-01-07", "9999-12-25", "9999-12-31",
                                    "2026-11-23"]), st.dates().map(lambda d: d.isoformat()),
                   _junk)
_ints = st.one_of(st.sampled_from(["1", "7", "28", "400"]),
                  st.integers(min_value=-10**20, max_value=10**20).map(str), _junk)
_params = st.fixed_dictionaries({}, optional={
    "start": _dates, "end": _dates, "date": _dates, "trend_days": _ints, "limit": _ints,
    "days": st.sampled_from(["1", "7", "28"]) | _junk,
    "granularity": st.sampled_from(["minute", "hour", "day"]) | _junk,
    "camera_id": st.sampled_from(["door", "floor"]) | _junk,
    "store_id": st.sampled_from(["a1", "a2", "b1"]) | _junk,
    "region": st.sampled_from(["Europe", "Asia"]) | _junk,
    "franchisee": st.sampled_from(["fa", "fb"]) | _junk})
GET_ROUTES = ["/me", "/stores", "/traffic", "/overview", "/conversion", "/devices",
              "/deadletters", "/stores/{s}/zones", "/stores/{s}/transitions",
              "/stores/{s}/heatmap", "/stores/{s}/demographics", "/stores/{s}/floorplan",
              "/members", "/weather/compare", "/stores/{s}/weather",
              "/visitors", "/stores/{s}/queues",
              "/alerts", "/alerts/limits", "/config/{s}", "/config/{s}/{camera_id}",
              "/live", "/simulated", "/models", "/models/{sha256}/file"]


@pytest.mark.parametrize("route", GET_ROUTES)
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=_params,
       store=st.one_of(st.sampled_from(["a1", "a2", "b1"]), st.text(min_size=1, max_size=12)))
def test_no_get_route_answers_5xx_whatever_the_query(api, route: str, params: dict[str, str],
                                                      store: str) -> None:
    client, tok = api
    path = API + route.replace("{s}", quote(store, safe=""))
    r = client.get(path, params=params, headers=tok["hq"])
    assert r.status_code < 500, (path, params, r.text)
    if r.status_code >= 400:
        assert r.json()["detail"]


def test_every_get_route_is_fuzzed(api) -> None:
    """A GET route added later must be added to GET_ROUTES too."""
    client, _ = api
    paths = {path.removeprefix(API).replace("{store_id}", "{s}")
             for path, ops in client.app.openapi()["paths"].items() if "get" in ops}
    assert paths - {"/health"} == set(GET_ROUTES)


@pytest.fixture
def lenient(api):
    """The same app, but a server error is answered (500) instead of raised in the test."""
    client, tok = api
    with TestClient(client.app, raise_server_exceptions=False) as c:
        yield c, tok


def test_a_csv_field_over_the_csv_modules_limit_is_a_422(lenient) -> None:
    client, tok = lenient
    h = tok["hq"]
    huge = "x" * 200_000  # csv.field_size_limit() is 131072
    pos = f"store_id,date,hour,transactions\na1,2026-11-23,10,1\n{huge},2026-11-23,10,1\n"
    r = client.post(f"{API}/pos/upload", headers=h, files={"file": ("p.csv", pos, "text/csv")})
    _refused(r, 422, "POS file", "line 3", "field larger than field limit")
    stores = f"store_id,name,timezone\nz1,{huge},UTC\n"
    r = client.post(f"{API}/stores/import", headers=h,
                    files={"file": ("s.csv", stores, "text/csv")})
    _refused(r, 422, "line 2", "field larger than field limit")
    assert [s["store_id"] for s in client.get(f"{API}/stores", headers=h).json()] == [
        "a1", "a2", "b1"]


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_json_is_a_4xx(lenient, text: str) -> None:
    client, tok = lenient
    h = tok["hq"]
    r = client.post(f"{API}/stores/import", headers=h,
                    files={"file": ("s.json", text, "application/json")})
    # a file that is not a JSON list is read as CSV: refused either way, never a 500
    _refused(r, 422, "nested too deeply" if text.startswith("[") else "field larger")
    _refused(_put_raw(client, h, f"{API}/stores/c1", text), 400, "nested too deeply")
    r = client.post(f"{API}/pos", headers={**h, "Content-Type": "application/json"},
                    content=text)
    _refused(r, 400, "nested too deeply")


@pytest.mark.parametrize("hour", ["2026-13-45T99:00", "2026-02-30T10:00", "2026-11-23T24:00"])
def test_pos_refuses_hours_that_do_not_exist(api, hour: str) -> None:
    client, tok = api
    r = client.post(f"{API}/pos", headers=tok["hq"],
                    json=[{"store_id": "a1", "hour_start": hour, "transactions": 1}])
    _refused(r, 422, "0.hour_start", "not a real store-local hour")
    conv = client.get(f"{API}/conversion?start=2026-01-01&end=2026-12-31",
                      headers=tok["hq"]).json()["series"]
    assert all(p["transactions"] is None for p in conv)


def test_pos_csv_names_the_bad_date_field(api) -> None:
    client, tok = api
    csv = ("store_id,date,hour,transactions\na1,2026-13-45,10,1\na1,20261123,10,1\n"
           "a1,2026-11-23,x,1\na1,2026-11-23,10,3\n")
    r = client.post(f"{API}/pos/upload", headers=tok["hq"],
                    files={"file": ("pos.csv", csv, "text/csv")}).json()
    assert r["stored"] == 1
    reasons = {x["line"]: x["reason"] for x in r["rejected"]}
    assert "date '2026-13-45'" in reasons[2] and "date '20261123'" in reasons[3]
    assert "hour 'x'" in reasons[4]


@pytest.mark.parametrize(("matrix", "words"), [
    ("[[NaN, 0, 0], [0, 1, 0], [0, 0, 1]]", "NaN or infinite"),
    ("[[1e999, 0, 0], [0, 1, 0], [0, 0, 1]]", "NaN or infinite"),
    ("[[0, 0, 0], [0, 0, 0], [0, 0, 0]]", "singular"),
    ("[[1, 2, 3], [2, 4, 6], [0, 0, 1]]", "singular"),  # two rows alike: rank 2
    ("[[1e-6, 0, 0], [0, 1e-6, 0], [0, 0, 1]]", "singular"),  # squashes 1 m into 1 um
])
def test_homographies_that_map_nothing_are_refused(api, storage: Storage, matrix: str,
                                                   words: str) -> None:
    client, tok = api
    text = ('{"name": "C", "timezone": "UTC", "cameras": [{"camera_id": "d", '
            f'"homography": {matrix}}}]}}')
    _refused(_put_raw(client, tok["hq"], f"{API}/stores/c1", text), 422,
             "cameras.0.homography", words)
    assert "c1" not in storage.registry.stores


def test_a_scaled_homography_is_still_accepted(api) -> None:
    client, tok = api
    scaled = [[2e-3, 0, 1e-3], [0, 2e-3, 0], [0, 0, 2e-3]]  # 1/500 of a real mapping
    r = client.put(f"{API}/stores/c1", headers=tok["hq"], json={
        **STORE, "cameras": [{"camera_id": "d", "homography": scaled}]})
    assert r.status_code == 200, r.text


def test_floorplan_points_must_be_finite(api) -> None:
    client, tok = api
    text = ('{"name": "C", "timezone": "UTC", "cameras": [{"camera_id": "d", '
            '"floorplan_points": [[0.1, NaN], [0.5, 0.5]]}]}')
    _refused(_put_raw(client, tok["hq"], f"{API}/stores/c1", text), 422,
             "cameras.0.floorplan_points", "finite")


def test_duplicate_camera_ids_in_one_store_are_refused(api, storage: Storage) -> None:
    client, tok = api
    cams = [{"camera_id": "door", "role": "entrance"}, {"camera_id": "door", "role": "floor"}]
    r = client.put(f"{API}/stores/a1", headers=tok["hq"], json={**STORE, "cameras": cams})
    _refused(r, 422, "cameras", "'door' appears more than once")
    stored = client.get(f"{API}/stores", headers=tok["hq"]).json()
    assert [c["camera_id"] for c in stored[0]["cameras"]] == ["door", "floor"]
    rows = "[" + json.dumps({"store_id": "z1", **STORE, "cameras": cams}) + "]"
    r = client.post(f"{API}/stores/import", headers=tok["hq"],
                    files={"file": ("s.json", rows, "application/json")})
    _refused(r, 422, "appears more than once")


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, 422, "IHDR"),
    (_png()[:60], 422, "does not decode"),  # truncated after the header
    (_png()[:33] + b"\0" * 200, 422, "does not decode"),  # header fine, data garbage
    (_jpeg()[:300] + b"\xff\xd9", 422, "does not decode"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 40, 422, "JPEG"),
    (b"GIF89a", 415, "PNG or JPEG"),
])
def test_floor_plans_that_do_not_decode_are_refused(api, storage: Storage, body: bytes,
                                                    status: int, words: str) -> None:
    client, tok = api
    r = client.put(f"{API}/stores/a1/floorplan", headers=tok["hq"], content=body)
    _refused(r, status, words)
    assert storage.get_floorplan("a1") is None


def test_a_floor_plan_claiming_huge_dimensions_is_refused_before_decoding(api) -> None:
    client, tok = api
    png = bytearray(_png())
    side = MAX_PLAN_SIDE * 8  # 65536 x 65536 x 3 would be 12 GB decoded
    png[16:24] = side.to_bytes(4, "big") * 2
    r = client.put(f"{API}/stores/a1/floorplan", headers=tok["hq"], content=bytes(png))
    _refused(r, 422, f"{side} x {side} pixels", str(MAX_PLAN_SIDE))


@pytest.mark.parametrize(("make", "kind"), [(_png, "image/png"), (_jpeg, "image/jpeg")])
def test_real_png_and_jpeg_plans_are_stored(api, make, kind: str) -> None:
    client, tok = api
    body = make()
    r = client.put(f"{API}/stores/a1/floorplan", headers=tok["hq"], content=body)
    assert r.json() == {"store_id": "a1", "content_type": kind, "bytes": len(body)}
    got = client.get(f"{API}/stores/a1/floorplan", headers=tok["hq"])
    assert got.content == body and got.headers["content-type"] == kind
