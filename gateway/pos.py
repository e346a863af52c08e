"""Point-of-sale transactions per store and local hour, for conversion = transactions/visitors.

Records are keyed by the store-local hour label, the same label the hourly rollups use.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.storage import Storage
from storesense.config import describe_validation_error
from storesense.schema import Ident

HOUR_LABEL = r"^\d{4}-\d{2}-\d{2}T\d{2}:00$"


class PosRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: Ident
    hour_start: str = Field(pattern=HOUR_LABEL, description="store-local 'YYYY-MM-DDTHH:00'")
    transactions: int = Field(ge=0, le=10_000_000)
    revenue: float | None = Field(None, ge=0.0, allow_inf_nan=False)

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


def unknown_stores(storage: Storage, records: list[PosRecord]) -> list[str]:
    return sorted({r.store_id for r in records} - storage.registry.stores.keys())


def upsert(storage: Storage, records: list[PosRecord]) -> int:
    with storage.transaction() as conn:
        conn.executemany(
            "INSERT INTO pos VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET "
            "transactions=excluded.transactions, revenue=excluded.revenue",
            [(r.store_id, r.hour_start, r.hour_start[:10], r.transactions, r.revenue)
             for r in records],
        )
    return len(records)


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
    )


def parse_csv(text: str, known: set[str]) -> tuple[list[PosRecord], list[dict[str, Any]]]:
    """CSV ``store_id,date,hour,transactions[,revenue]`` -> (records, rejected lines).

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
