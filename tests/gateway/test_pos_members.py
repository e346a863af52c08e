"""Member and new-member counts in the POS import, and GET /api/v1/members, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api import create_app
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.members import join_rate, member_share
from gateway.storage import Storage
from storesense.cli import main as cli
from tests.gateway.helpers import store

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
Api = tuple[TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def api(storage: Storage) -> Iterator[Api]:
    storage.upsert_stores([store("a1", franchisee="fa"), store("b1", franchisee="fb")])
    tokens = {name: {"Authorization": f"Bearer {create_token(storage, name, scope)}"}
              for name, scope in (("hq", "hq"), ("fa", "franchisee:fa"))}
    with TestClient(create_app(GatewaySettings(), storage, clock=lambda: NOW)) as client:
        yield client, tokens


# (transactions, members, new_members) -> (member share, join rate); the join rate's
# denominator is the transactions of customers who came in as non-members:
# transactions - members + new_members
SHARES = [
    ((100, 40, 6), (0.4, 6 / 66)),
    ((10, 10, 10), (1.0, 1.0)),   # everyone joined at the till
    ((10, 10, 0), (1.0, None)),   # only existing members: no non-member came
    ((10, 0, 0), (0.0, 0.0)),
    ((0, 0, 0), (None, None)),
]


@pytest.mark.parametrize(("counts", "expected"), SHARES)
def test_member_share_and_join_rate(counts: tuple[int, int, int],
                                    expected: tuple[float | None, float | None]) -> None:
    tx, m, new = counts
    share, rate = expected
    assert member_share(tx, m) == (None if share is None else pytest.approx(share, abs=1e-4))
    assert join_rate(tx, m, new) == (None if rate is None else pytest.approx(rate, abs=1e-4))


BAD_RECORDS = [
    ({"members": 11}, "members (11) must be <= transactions (10)"),
    ({"members": 4, "new_members": 5}, "new_members (5) must be <= members (4)"),
    ({"new_members": 1}, "new_members needs members"),
    ({"members": -1}, "members"),
    ({"members": 10, "new_members": -2}, "new_members"),
    ({"members": 10_000_001}, "members"),
]


@pytest.mark.parametrize(("extra", "words"), BAD_RECORDS)
def test_bad_member_counts_are_422_and_store_nothing(api: Api, storage: Storage,
                                                     extra: dict[str, int], words: str) -> None:
    client, tok = api
    good = {"store_id": "a1", "hour_start": "2026-11-23T10:00", "transactions": 10}
    bad = {**good, "hour_start": "2026-11-23T11:00", **extra}
    r = client.post("/api/v1/pos", json=[good, bad], headers=tok["hq"])
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"] and r.json()["detail"].startswith("1")  # the record
    assert storage.read().execute("SELECT count(*) FROM pos").fetchone()[0] == 0


def test_members_endpoint_sums_only_hours_that_report_members(api: Api) -> None:
    client, tok = api
    rows = [
        {"store_id": "a1", "hour_start": "2026-11-23T10:00", "transactions": 50,
         "members": 20, "new_members": 3},
        {"store_id": "a1", "hour_start": "2026-11-23T11:00", "transactions": 30,
         "members": 10, "new_members": 0},
        # an import from before members existed: left out of member figures, not 0 members
        {"store_id": "a1", "hour_start": "2026-11-23T12:00", "transactions": 40},
        {"store_id": "b1", "hour_start": "2026-11-24T10:00", "transactions": 20,
         "members": 15, "new_members": 5},
    ]
    assert client.post("/api/v1/pos", json=rows, headers=tok["hq"]).json() == {"stored": 4}
    r = client.get("/api/v1/members", params={"start": "2026-11-23", "end": "2026-11-24"},
                   headers=tok["hq"])
    assert r.status_code == 200, r.text
    body = r.json()
    tot = body["totals"]
    assert (tot["transactions"], tot["members"], tot["new_members"], tot["hours"]) == (
        100, 45, 8, 3)
    assert tot["member_share"] == pytest.approx(45 / 100, abs=1e-4)
    assert tot["non_member_transactions"] == 100 - 45 + 8
    assert tot["join_rate"] == pytest.approx(8 / 63, abs=1e-4)
    assert [(p["period"], p["transactions"], p["members"]) for p in body["series"]] == [
        ("2026-11-23", 80, 30), ("2026-11-24", 20, 15)]
    assert {s["store_id"]: s["member_share"] for s in body["stores"]} == {
        "a1": pytest.approx(30 / 80, abs=1e-4), "b1": pytest.approx(0.75)}
    hourly = client.get("/api/v1/members", params={"start": "2026-11-23", "granularity": "hour"},
                        headers=tok["hq"]).json()
    assert [p["period"] for p in hourly["series"]] == ["2026-11-23T10:00", "2026-11-23T11:00"]
    # a franchisee token sees its own store only; another's is a 403
    fa = client.get("/api/v1/members", params={"start": "2026-11-23", "end": "2026-11-24"},
                    headers=tok["fa"]).json()
    assert [s["store_id"] for s in fa["stores"]] == ["a1"] and fa["totals"]["members"] == 30
    assert client.get("/api/v1/members", params={"store_id": "b1"},
                      headers=tok["fa"]).status_code == 403


def test_reimport_without_members_clears_them(api: Api) -> None:
    client, tok = api
    row = {"store_id": "a1", "hour_start": "2026-11-23T10:00", "transactions": 50,
           "members": 20, "new_members": 3}
    client.post("/api/v1/pos", json=[row], headers=tok["hq"]).raise_for_status()
    # the till system re-sends the hour with fewer transactions and no member data: the old
    # members (20) beside 12 transactions would be a share over 1
    client.post("/api/v1/pos", json=[{**row, "transactions": 12, "members": None,
                                      "new_members": None}], headers=tok["hq"]).raise_for_status()
    tot = client.get("/api/v1/members", params={"start": "2026-11-23"},
                     headers=tok["hq"]).json()["totals"]
    assert tot["hours"] == 0 and tot["member_share"] is None


CSV = """store_id,date,hour,transactions,revenue,members,new_members
a1,2026-11-23,10,50,1200.5,20,3
a1,2026-11-23,11,30,,,
a1,2026-11-23,12,30,,31,
a1,2026-11-23,13,30,,x,
a1,2026-11-23,14,30,,10,11
"""


def test_csv_upload_takes_optional_member_columns_and_names_bad_lines(api: Api) -> None:
    client, tok = api
    r = client.post("/api/v1/pos/upload", files={"file": ("pos.csv", CSV.encode())},
                    headers=tok["hq"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == 2
    reasons = {x["line"]: x["reason"] for x in body["rejected"]}
    assert set(reasons) == {4, 5, 6}
    assert "members (31) must be <= transactions (30)" in reasons[4]
    assert "members 'x' is not a whole number" in reasons[5]
    assert "new_members (11) must be <= members (10)" in reasons[6]
    tot = client.get("/api/v1/members", params={"start": "2026-11-23"},
                     headers=tok["hq"]).json()["totals"]
    assert (tot["transactions"], tot["members"], tot["new_members"]) == (50, 20, 3)
    # the old format, without the member columns, still imports
    old = "store_id,date,hour,transactions\na1,2026-11-24,10,7\n"
    r = client.post("/api/v1/pos/upload", files={"file": ("pos.csv", old.encode())},
                    headers=tok["hq"])
    assert r.json() == {"stored": 1, "rejected": []}


def test_import_pos_command(storage: Storage, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    storage.upsert_stores([store("a1")])
    path = tmp_path / "pos.csv"
    path.write_text(CSV, encoding="utf-8-sig")  # Excel's UTF-8 carries a BOM
    assert cli(["gateway", "import-pos", "--db", str(storage.target), str(path)]) == 1
    out = capsys.readouterr().out
    assert '"stored": 2' in out and "must be <= transactions" in out
    got = storage.read().execute(
        "SELECT local_hour, transactions, members, new_members FROM pos ORDER BY local_hour"
    ).fetchall()
    assert [tuple(r) for r in got] == [("2026-11-23T10:00", 50, 20, 3),
                                       ("2026-11-23T11:00", 30, None, None)]
    assert cli(["gateway", "import-pos", "--db", str(storage.target),
                str(tmp_path / "missing.csv")]) == 2
