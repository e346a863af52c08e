"""Point-of-sale transactions per store and local hour, for conversion = transactions/visitors.

Records are keyed by the store-local hour label, the same label the hourly rollups use.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    hour = int(row.get("hour") or "x")  # ValueError for a missing or non-numeric hour
    if not 0 <= hour <= 23:
        raise ValueError(f"hour {hour} outside 0-23")
    return PosRecord(
        store_id=row.get("store_id") or "",
        hour_start=f"{row.get('date') or ''}T{hour:02d}:00",
        transactions=int(row.get("transactions") or "x"),
        revenue=float(row["revenue"]) if row.get("revenue") not in (None, "") else None,
    )


def parse_csv(text: str, known: set[str]) -> tuple[list[PosRecord], list[dict[str, Any]]]:
    """CSV ``store_id,date,hour,transactions[,revenue]`` -> (records, rejected lines)."""
    records: list[PosRecord] = []
    rejected: list[dict[str, Any]] = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):  # line 1 is header
        try:
            rec = _row_to_record(row)
        except ValidationError as e:
            rejected.append({"line": i, "reason": describe_validation_error(e)})
            continue
        except (ValueError, TypeError) as e:
            rejected.append({"line": i, "reason": f"not a number: {e}"})
            continue
        if rec.store_id not in known:
            rejected.append({"line": i, "reason": f"unknown store {rec.store_id!r}"})
            continue
        records.append(rec)
    return records, rejected
