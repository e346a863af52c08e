"""Point-of-sale transactions per store and local hour, for conversion = transactions/visitors,
and optionally the hour's member transactions and new members (gateway/members.py).

Records are keyed by the store-local hour label, the same label the hourly rollups use. A
re-import of an hour replaces its figures, members included (absent members become "not
reported", never the figures of an earlier import beside new transactions).

``storesense gateway import-pos --db PATH FILE.csv`` imports a CSV without the API.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.db import DB_HELP, Database, add_sets
from gateway.db import target as db_target
from gateway.rollups import add_blocks
from gateway.storage import Storage
from storesense.config import describe_validation_error, read_text_file
from storesense.errors import ConfigError
from storesense.schema import Ident

HOUR_LABEL = r"^\d{4}-\d{2}-\d{2}T\d{2}:00$"


class PosRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: Ident
    hour_start: str = Field(pattern=HOUR_LABEL, description="store-local 'YYYY-MM-DDTHH:00'")
    transactions: int = Field(ge=0, le=10_000_000)
    revenue: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    members: int | None = Field(
        None, ge=0, le=10_000_000,
        description="transactions by loyalty members, including those who joined in that "
        "transaction; null: not reported",
    )
    new_members: int | None = Field(
        None, ge=0, le=10_000_000,
        description="transactions in which the customer joined the loyalty programme "
        "(counted in members too); needs members",
    )

    @field_validator("hour_start")
    @classmethod
    def _real_hour(cls, v: str) -> str:
        # the pattern lets "2026-13-45T99:00" through; stored, it would be a label no
        # rollup hour ever matches, and break date arithmetic downstream
        try:
            datetime.strptime(v, "%Y-%m-%dT%H:%M")
        except ValueError as e:
            raise ValueError("not a real store-local hour: month 01-12, a day of that month, "
                             "hour 00-23, as YYYY-MM-DDTHH:00") from e
        return v

    @model_validator(mode="after")
    def _members_fit(self) -> PosRecord:
        # every member transaction is a transaction, every new member a member: otherwise the
        # shares computed from them leave 0..1 (gateway/members.py)
        if self.members is not None and self.members > self.transactions:
            raise ValueError(f"members ({self.members}) must be <= transactions "
                             f"({self.transactions})")
        if self.new_members is not None:
            if self.members is None:
                raise ValueError("new_members needs members (new members are counted in "
                                 "members)")
            if self.new_members > self.members:
                raise ValueError(f"new_members ({self.new_members}) must be <= members "
                                 f"({self.members})")
        return self


class PosFileError(ValueError):
    """The file as a whole cannot be read as CSV (not one bad line)."""


def _day(text: str) -> str:
    """A strict 'YYYY-MM-DD' calendar date (fromisoformat alone also takes '20261123')."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise ValueError(f"date {text!r} is not a calendar date YYYY-MM-DD")


def _int(row: dict[str, Any], field: str) -> int:
    text = row.get(field) or ""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a whole number") from None


def _optional_int(row: dict[str, Any], field: str) -> int | None:
    """An optional column: absent from the file, or an empty cell, is None (not reported)."""
    return None if (row.get(field) or "").strip() == "" else _int(row, field)


def unknown_stores(storage: Storage, records: list[PosRecord]) -> list[str]:
    return sorted({r.store_id for r in records} - storage.registry.stores.keys())


def upsert(storage: Storage, records: list[PosRecord]) -> int:
    """Store the hours (a record replaces the same hour's), and keep the daily and block sums
    the overview reads (pos_day, rollup_block) in step by the difference."""
    latest = {(r.store_id, r.hour_start): r for r in records}  # the file's last line wins
    with storage.transaction() as conn:
        before = _stored_hours(conn, latest)
        delta: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for (s, h), r in latest.items():
            old = before.get((s, h))
            acc = delta[(s, h[:10])]
            acc[0] += r.transactions - (old or 0)
            acc[1] += old is None  # a new hour
        conn.executemany(
            "INSERT INTO pos_day (local_date, store_id, transactions, pos_hours) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (local_date, store_id) DO UPDATE SET "
            + add_sets(("transactions", "pos_hours"), "pos_day"),
            [(d, s, n, h) for (s, d), (n, h) in sorted(delta.items())])
        add_blocks(conn, {k: (0, 0, 0.0, n, h) for k, (n, h) in delta.items()})
        conn.executemany(
            "INSERT INTO pos (store_id, local_hour, local_date, transactions, revenue, members, "
            "new_members) VALUES (?,?,?,?,?,?,?) ON CONFLICT (store_id, local_hour) DO UPDATE SET "
            "transactions=excluded.transactions, revenue=excluded.revenue, "
            "members=excluded.members, new_members=excluded.new_members",
            [(r.store_id, r.hour_start, r.hour_start[:10], r.transactions, r.revenue,
              r.members, r.new_members) for r in latest.values()],
        )
    return len(records)


def _stored_hours(conn: Database, latest: dict[tuple[str, str], PosRecord],
                  ) -> dict[tuple[str, str], int]:
    """Transactions already stored for these (store, hour) keys: each store's rows between
    the first and last hour given, read along the primary key."""
    hours = [h for _, h in latest]
    got = conn.execute(
        "SELECT store_id, local_hour, transactions FROM pos WHERE store_id IN "
        "(SELECT value FROM json_each(?)) AND local_hour BETWEEN ? AND ?",
        (json.dumps(sorted({s for s, _ in latest})), min(hours, default=""),
         max(hours, default="")))
    return {(s, h): int(n) for s, h, n in got if (s, h) in latest}


def _row_to_record(row: dict[str, Any]) -> PosRecord:
    """One CSV line; a ValueError names the bad field."""
    hour = _int(row, "hour")
    if not 0 <= hour <= 23:
        raise ValueError(f"hour {hour} outside 0-23")
    revenue = row.get("revenue")
    try:
        money = float(revenue) if revenue not in (None, "") else None
    except ValueError:
        raise ValueError(f"revenue {revenue!r} is not a number") from None
    return PosRecord(
        store_id=row.get("store_id") or "",
        hour_start=f"{_day(row.get('date') or '')}T{hour:02d}:00",
        transactions=_int(row, "transactions"),
        revenue=money,
        members=_optional_int(row, "members"),
        new_members=_optional_int(row, "new_members"),
    )


def parse_csv(text: str, known: set[str]) -> tuple[list[PosRecord], list[dict[str, Any]]]:
    """CSV ``store_id,date,hour,transactions[,revenue][,members][,new_members]`` ->
    (records, rejected lines). The optional columns may be absent or empty (not reported).

    Raises PosFileError when the CSV itself breaks (a field over csv.field_size_limit())."""
    records: list[PosRecord] = []
    rejected: list[dict[str, Any]] = []
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as e:  # the reader cannot go on past it: refuse the file
        raise PosFileError(f"line {reader.line_num + 1}: {e}") from e  # the one it stopped in
    for i, row in enumerate(rows, start=2):  # line 1 is header
        try:
            rec = _row_to_record(row)
        except ValidationError as e:
            rejected.append({"line": i, "reason": describe_validation_error(e)})
            continue
        except (ValueError, TypeError) as e:
            rejected.append({"line": i, "reason": str(e)})
            continue
        if rec.store_id not in known:
            rejected.append({"line": i, "reason": f"unknown store {rec.store_id!r}"})
            continue
        records.append(rec)
    return records, rejected


def import_text(storage: Storage, text: str) -> dict[str, Any]:
    """Parse and store a POS CSV: ``{"stored": n, "rejected": [{"line", "reason"}]}``."""
    records, rejected = parse_csv(text, set(storage.registry.stores))
    return {"stored": upsert(storage, records), "rejected": rejected}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=db_target, required=True, help=DB_HELP)
    parser.add_argument("file", type=Path, help="CSV: store_id,date,hour,transactions"
                        "[,revenue][,members][,new_members] (date and hour store-local)")


def run(args: argparse.Namespace) -> int:
    """``storesense gateway import-pos``: prints what was stored and each rejected line;
    exit status 1 when a line was rejected (the good lines are stored all the same)."""
    text = read_text_file(args.file, "POS")
    storage = Storage(args.db)
    try:
        result = import_text(storage, text)
    except PosFileError as e:
        raise ConfigError(f"POS file {args.file}: {e}") from e
    finally:
        storage.close()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 1 if result["rejected"] else 0
