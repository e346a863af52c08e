"""The HQ overview's store rows as JSON, with no Python statement run per store.

At 4,000 stores a dict per store (three round() calls each) and the encoder walking them
cost ~15 ms of CPU a request, and on a busy box a request gets a third of a core. Here each
column is computed with numpy over every store at once, turned into Python values and JSON
text by C loops (``tolist``, ``map(round, ...)``, msgspec encoding a whole column at once),
and the rows are joined from pieces: each store's registry fields, encoded once per
registry (``head``), and each column's text with its key. The JSON is byte for byte what
msgspec made of the dicts before (tests/gateway/test_overview_rows.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import numpy as np

from gateway.storage import StoreInfo

_encode = msgspec.json.encode


def head(store_id: str, m: StoreInfo) -> bytes:
    """A row's registry fields, open for its figures: ``},{"store_id":...,"visitors":`` (the
    previous row's end comes with it; the first row's is cut off)."""
    fixed = _encode({"store_id": store_id, "name": m.name, "name_zh": m.name_zh,
                     "region": m.region, "franchisee": m.franchisee})
    return b"}," + fixed[:-1] + b',"visitors":'


def _column(values: list[Any], key: str = "", then: str = "") -> list[bytes]:
    """Each value's JSON after ``"key":`` and before ``,"then":``. Numbers, null and
    booleans hold no comma: the column is encoded at once and split there, and the keys go
    in with the split (C loops, no Python per value)."""
    before = b',"' + key.encode() + b'":' if key else b""
    after = b',"' + then.encode() + b'":' if then else b""
    text = _encode(values)[1:-1]
    return (before + text.replace(b",", after + b"\x1e" + before) + after).split(b"\x1e")


def _where(ok: np.ndarray, values: Iterable[Any]) -> list[Any]:
    """``values`` with None where ``ok`` is false."""
    out = np.array(list(values), dtype=object)
    out[~ok] = None
    return list(out.tolist())


def _rounded(x: np.ndarray, digits: int) -> list[float]:
    """Python's round(v, digits) of each value, computed in numpy where that is the same.

    Python rounds the exact decimal value of v (half to even) to the nearest double;
    rint(v * 10**digits) / 10**digits is that same double unless v * 10**digits, itself
    rounded, lies within a few units in the last place of a half (or is huge or not
    finite): those few are rounded by Python's round() itself. Python's round() of every
    value cost ~2.7 ms per 4,000 (it goes through decimal text); numpy's own round()
    differs on halves like 0.15."""
    scale = 10.0 ** digits
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * scale
        out: list[float] = (np.rint(y) / scale).tolist()
        near = np.abs(y - np.floor(y) - 0.5) <= 4 * np.spacing(np.abs(y))
        odd = ~np.isfinite(y) | (np.abs(y) >= 2.0 ** 50) | near
    for i in np.flatnonzero(odd).tolist():
        out[i] = round(float(x[i]), digits)
    return out


def _ratio(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """a / b as float64 where ok (b != 0 there), 0 elsewhere: the same IEEE division as
    Python's float(a) / float(b)."""
    out: np.ndarray = np.divide(a, b, out=np.zeros(len(a)), where=ok)
    return out


def stores_json(heads: Sequence[bytes], visitors: np.ndarray, last: np.ndarray,
                zone_visits: np.ndarray, dwell: np.ndarray, transactions: np.ndarray,
                pos_hours: np.ndarray, occupancy: np.ndarray, online: Sequence[bool],
                last_seen: Sequence[str | None]) -> bytes:
    """The JSON array of the stores' rows, one per head, from per-store figures (float64
    arrays as the period cache sums them; ``last``: the comparison's visitors)."""
    n = len(heads)
    if n == 0:
        return b"[]"
    v = visitors.astype(np.int64)
    lw = last.astype(np.int64)
    tx = transactions.astype(np.int64)
    # a store with no POS hour in the period has no transactions (None), not 0
    has_pos = pos_hours > 0
    had = lw != 0
    # round(100.0 * (v - lw) / lw, 1): int differences, then float as Python computes them
    change = _rounded(_ratio(100.0 * (v - lw).astype(np.float64), lw.astype(np.float64),
                             had), 1)
    sold = has_pos & (v != 0)
    conversion = _rounded(_ratio(tx.astype(np.float64), v.astype(np.float64), sold), 4)
    visited = zone_visits != 0
    avg_dwell = _rounded(_ratio(dwell, zone_visits, visited), 1)
    columns = [
        _column(v.tolist()), _column(lw.tolist(), "visitors_last_week"),
        _column(_where(had, change), "change_pct"),
        _column(_where(has_pos, tx.tolist()), "transactions"),
        _column(_where(sold, conversion), "conversion"),
        _column(_where(visited, avg_dwell), "avg_dwell_s"),
        _column(occupancy.astype(np.int64).tolist(), "occupancy_now"),
        _column(list(online), "online", then="last_seen"), list(map(_encode, last_seen)),
    ]
    if any(len(col) != n for col in columns):
        raise ValueError("a column's JSON does not hold one value per store")
    # a row's pieces: its head, then each column's; placed by slices into one list (a zip of
    # the columns would make a tuple per store)
    width = 1 + len(columns)
    pieces: list[bytes] = [b""] * (n * width)
    pieces[0::width] = heads
    for i, col in enumerate(columns):
        pieces[1 + i::width] = col
    pieces[0] = pieces[0][2:]  # no row before the first
    return b"[" + b"".join(pieces) + b"}]"
