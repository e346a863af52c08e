"""The overview's store rows built as JSON column by column (gateway/overview_rows.py) are the
bytes msgspec made of the per-store dicts before: plain arrays in, bytes compared."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest

from gateway.overview_rows import _rounded, head, stores_json
from gateway.storage import StoreInfo


def _dict_rows(ids: list[str], meta: dict[str, StoreInfo], a: dict[str, np.ndarray],
               online: list[bool], seen: list[str | None]) -> list[dict[str, Any]]:
    """The rows as gateway/overview.py built them until 2026-12-06, one dict per store."""
    out = []
    for i, sid in enumerate(ids):
        m = meta[sid]
        v, lw = int(a["visitors"][i]), int(a["last"][i])
        zv, dw = float(a["zone_visits"][i]), float(a["dwell"][i])
        t, pos = int(a["transactions"][i]), bool(a["pos_hours"][i] > 0)
        out.append({
            "store_id": sid, "name": m.name, "name_zh": m.name_zh, "region": m.region,
            "franchisee": m.franchisee, "visitors": v, "visitors_last_week": lw,
            "change_pct": round(100.0 * (v - lw) / lw, 1) if lw else None,
            "transactions": t if pos else None,
            "conversion": round(t / v, 4) if pos and v else None,
            "avg_dwell_s": round(dw / zv, 1) if zv else None,
            "occupancy_now": int(a["occupancy"][i]), "online": online[i],
            "last_seen": seen[i],
        })
    return out


def _case(n: int, seed: int) -> tuple[list[str], dict[str, StoreInfo], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    ids = [f"s{i:05d}" for i in range(n)]
    names = ['Store "A"', "店 北京\\路", "x,y", "", "tab\there"]
    meta = {s: StoreInfo(s, ZoneInfo("UTC"), f"r-{i % 3}", f"f,{i % 2}",
                         names[i % len(names)], names[(i + 1) % len(names)])
            for i, s in enumerate(ids)}
    small = rng.integers(0, 40, n).astype(np.float64)  # many zeros and ties of x.x5
    arrays = {
        "visitors": np.where(rng.random(n) < 0.5, small, rng.integers(0, 10**6, n)),
        "last": np.where(rng.random(n) < 0.5, small[::-1], rng.integers(0, 10**6, n)),
        "zone_visits": np.where(rng.random(n) < 0.2, 0.0, small + 1),
        "dwell": np.where(rng.random(n) < 0.5, rng.random(n) * 1e4,
                          rng.integers(0, 400, n) * 0.05),
        "transactions": rng.integers(0, 300, n).astype(np.float64),
        "pos_hours": np.where(rng.random(n) < 0.3, 0.0, 12.0),
        "occupancy": rng.integers(0, 50, n).astype(np.float64),
    }
    return ids, meta, arrays


@pytest.mark.parametrize("n, seed", [(0, 0), (1, 1), (7, 2), (4000, 3)])
def test_rows_are_the_bytes_of_the_dicts(n: int, seed: int) -> None:
    ids, meta, a = _case(n, seed)
    online = [i % 3 != 0 for i in range(n)]
    seen = [None if i % 5 == 0 else f"2026-11-2{i % 9}T10:00:0{i % 7}Z" for i in range(n)]
    got = stores_json([head(s, meta[s]) for s in ids], a["visitors"], a["last"],
                      a["zone_visits"], a["dwell"], a["transactions"], a["pos_hours"],
                      a["occupancy"], online, seen)
    assert got == msgspec.json.encode(_dict_rows(ids, meta, a, online, seen))
    assert len(msgspec.json.decode(got)) == n


def test_rounding_is_pythons_round_on_halves_and_edges() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([
        np.arange(-2000, 2000) / 20,  # every x.x5 and x.xx5 with its binary error
        np.arange(-20000, 20000) / 200000,
        100.0 * (rng.integers(0, 500, 20000) - 250) / rng.integers(1, 500, 20000),
        rng.normal(0, 1e3, 20000), rng.random(2000) * 1e15,
        [0.15, 0.25, 2.675, -0.05, -0.0, 1e300, -1e300, 5e-324, np.inf, -np.inf],
    ])
    for digits in (1, 4):
        got = _rounded(x, digits)
        want = [round(v, digits) for v in x.tolist()]
        assert msgspec.json.encode(got) == msgspec.json.encode(want)
    nan = _rounded(np.array([np.nan]), 1)[0]
    assert nan != nan
