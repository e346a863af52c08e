"""Feed records and the data-lake export files (used by gateway.feed).

One record shape leaves the gateway, documented in docs/feed.md: flat, platform-friendly columns
(ids, UTC times, in/out totals and per line, occupancy) plus the full WindowAggregate, its
demographic cells of fewer than 5 people suppressed (``public_aggregate``). JSON
(HTTP push, ``jsonl`` files) carries the aggregate as an object under ``aggregate``; Parquet
carries it as text in ``aggregate_json`` because Parquet has no JSON type and a struct column
would change with every schema version.

Files: ``OUT/windows/dt=YYYY-MM-DD/part-<first seq>-<last seq>.<parquet|jsonl>``, ``dt`` the
UTC date of ``window_start`` (the windows table carries no store time zone; the store-local
day is derived downstream from the store registry). Each file is written to a hidden
``.part-*.tmp`` name (Spark, Hive and Trino skip names starting with ``.``), fsynced and renamed,
so a reader never sees half a file.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from gateway.db import Database
from gateway.suppress import MIN_CELL, suppress_dimensions
from storesense.errors import StoresenseError

if TYPE_CHECKING:
    import pyarrow as pa

ExportFormat = Literal["parquet", "jsonl"]


class FeedError(StoresenseError):
    """Pushing or exporting failed. ``permanent`` errors need an operator (bad URL, token,
    rejected payload, a stored window that cannot be formatted); the others are retried on
    the next run."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent

WINDOW_COLUMNS = (
    "seq, message_id, store_id, camera_id, window_start, window_end, received_at, simulated, "
    "payload"
)


@dataclass(frozen=True)
class WindowRow:
    """One row of the gateway's ``windows`` table (see gateway/storage.py)."""

    seq: int
    message_id: str
    store_id: str
    camera_id: str
    window_start: str
    window_end: str
    received_at: str | None
    simulated: bool
    payload: str


def read_rows(db: Database, first: int, last: int) -> list[WindowRow]:
    """Rows with ``first <= seq <= last`` in seq order (rows are never updated, so a range
    read twice gives the same rows: that is what makes a retried batch identical)."""
    cur = db.execute(
        f"SELECT {WINDOW_COLUMNS} FROM windows WHERE seq BETWEEN ? AND ? ORDER BY seq",
        [first, last],
    )
    return [
        WindowRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8])
        for r in cur.fetchall()
    ]


def parse_utc(text: str) -> datetime:
    """A stored timestamp as an aware UTC datetime; accepts 'Z' and '+hh:mm' offsets."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return dt.astimezone(UTC)


_UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def utc_iso(text: str) -> str:
    """Normalise to 'YYYY-MM-DDTHH:MM:SSZ' so every record spells time the same way."""
    if _UTC_ISO.fullmatch(text):  # the storage contract's form: nothing to do
        return text
    return parse_utc(text).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line_counts(agg: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"line": str(x["line"]), "in_count": int(x["in_count"]),
         "out_count": int(x["out_count"])}
        for x in agg.get("lines", [])
    ]


def flat_fields(row: WindowRow) -> dict[str, Any]:
    """The flat columns of a window's record (everything except the full aggregate)."""
    return _parsed(row)[0]


def _parsed(row: WindowRow) -> tuple[dict[str, Any], str]:
    """(flat columns, the aggregate as it may leave the gateway: demographics suppressed).

    A stored window that does not parse stops the feed with its seq and id (permanent):
    skipping it would lose it silently, and retrying cannot change it.
    """
    try:
        agg: dict[str, Any] = json.loads(row.payload)
        return _flat_fields(row, agg), public_aggregate(row.payload, agg)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FeedError(
            f"stored window seq {row.seq} ({row.message_id}) cannot be formatted: {e!r}",
            permanent=True,
        ) from e


def public_aggregate(payload: str, agg: dict[str, Any]) -> str:
    """The stored aggregate with its demographics k-suppressed at the feed's level, the window
    (gateway/suppress.py): cells of fewer than MIN_CELL people are null, with complements,
    listed in ``demographics.suppressed``. A window without demographic counts leaves as
    stored, byte for byte (re-encoding costs a third of the push)."""
    demo = agg.get("demographics")
    if not isinstance(demo, dict) or not any(isinstance(v, dict) and v for v in demo.values()):
        return payload.strip()
    cells, hidden = suppress_dimensions(demo, MIN_CELL)
    public = {**agg, "demographics": {**cells, "min_cell": MIN_CELL, "suppressed": hidden}}
    return msgspec.json.encode(public).decode()  # a third of json.dumps' time


def _flat_fields(row: WindowRow, agg: dict[str, Any]) -> dict[str, Any]:
    lines = _line_counts(agg)
    occ = agg.get("occupancy") or {}
    return {
        "seq": row.seq,
        "message_id": row.message_id,
        "store_id": row.store_id,
        "camera_id": row.camera_id,
        "window_start": utc_iso(row.window_start),
        "window_end": utc_iso(row.window_end),
        "received_at": utc_iso(row.received_at) if row.received_at else None,
        "simulated": row.simulated,
        "schema_version": int(agg.get("schema_version", 0)),
        "frames": int(agg.get("frames", 0)),
        "in_count": sum(x["in_count"] for x in lines),
        "out_count": sum(x["out_count"] for x in lines),
        "lines": lines,
        "occupancy_avg": float(occ.get("avg", 0.0)),
        "occupancy_max": int(occ.get("max", 0)),
    }


def record_json(row: WindowRow) -> str:
    """The JSON record of one window (HTTP push and jsonl files), on one line.

    The aggregate is spliced in as text (``public_aggregate``): the stored payload verbatim
    when it has no demographic counts (it was validated at ingest), else re-encoded with them
    suppressed.
    """
    fields, aggregate = _parsed(row)
    flat = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return f'{flat[:-1]},"aggregate":{aggregate}}}'


@functools.cache
def parquet_schema() -> pa.Schema:
    """The files' columns. pyarrow is imported here, on the first Parquet export, not when a
    gateway starts: ~0.2 s of import time and ~30 MB of memory in every gateway process,
    and most gateways write JSON or none."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")  # microseconds: what Spark, Hive and Trino read natively
    return pa.schema([
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("store_id", pa.string(), nullable=False),
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("window_start", ts, nullable=False),
        pa.field("window_end", ts, nullable=False),
        pa.field("received_at", ts),
        pa.field("simulated", pa.bool_(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("frames", pa.int64(), nullable=False),
        pa.field("in_count", pa.int64(), nullable=False),
        pa.field("out_count", pa.int64(), nullable=False),
        pa.field("lines", pa.list_(pa.struct([
            pa.field("line", pa.string()),
            pa.field("in_count", pa.int64()),
            pa.field("out_count", pa.int64()),
        ]))),
        pa.field("occupancy_avg", pa.float64(), nullable=False),
        pa.field("occupancy_max", pa.int64(), nullable=False),
        pa.field("aggregate_json", pa.string(), nullable=False),
    ])


def _parquet_row(row: WindowRow) -> dict[str, Any]:
    rec, aggregate = _parsed(row)
    rec["window_start"] = parse_utc(row.window_start)
    rec["window_end"] = parse_utc(row.window_end)
    rec["received_at"] = parse_utc(row.received_at) if row.received_at else None
    rec["aggregate_json"] = aggregate  # as pushed: demographics suppressed
    return rec


def partition_date(row: WindowRow) -> str:
    """``dt`` of a window: the UTC calendar date of its start."""
    return parse_utc(row.window_start).strftime("%Y-%m-%d")


def _fsync_dir(path: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tmp(rows: list[WindowRow], tmp: Path, fmt: ExportFormat) -> None:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([_parquet_row(r) for r in rows], schema=parquet_schema())
        pq.write_table(table, tmp)
    else:
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(record_json(r))
                f.write("\n")
    with tmp.open("rb") as f:
        os.fsync(f.fileno())


def write_file(rows: list[WindowRow], part_dir: Path, fmt: ExportFormat) -> Path:
    """Write one partition file atomically. The name depends only on the rows, so rewriting the
    same rows (after a crash before the cursor commit) replaces the file instead of adding one."""
    part_dir.mkdir(parents=True, exist_ok=True)
    name = f"part-{rows[0].seq:012d}-{rows[-1].seq:012d}.{fmt}"
    final = part_dir / name
    tmp = part_dir / f".{name}.tmp"
    try:
        _write_tmp(rows, tmp, fmt)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(part_dir)
    return final


def write_partitions(rows: Iterable[WindowRow], out_dir: Path, fmt: ExportFormat) -> list[Path]:
    """Split rows (in seq order) by ``dt`` and write one file per partition."""
    by_dt: dict[str, list[WindowRow]] = defaultdict(list)
    for r in rows:
        by_dt[partition_date(r)].append(r)
    return [
        write_file(by_dt[dt], out_dir / "windows" / f"dt={dt}", fmt) for dt in sorted(by_dt)
    ]
