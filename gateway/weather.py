"""Daily weather per store and store-local date, and rainy days set against dry ones.

Records come from a CSV (``storesense gateway import-weather``, ``POST /api/v1/weather/upload``)
or a weather feed's push (``POST /api/v1/weather``, with a ``weather`` token). A store and date
is one row: a later record for it replaces the earlier one (a forecast pushed in the morning,
the observation at night), so pushing the same records again changes nothing.

Conditions are a fixed vocabulary, so that "rainy" means the same in every chain: ``dry``,
``rain``, ``heavy_rain``, ``storm`` (rain with thunder or gales) and ``snow``. The comparison
sets rainy days (rain, heavy_rain, storm) against dry days; snow days are counted apart.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.db import DB_HELP, Database
from gateway.db import target as db_target
from gateway.queries import StoreIds, store_filter
from gateway.rollups import utc_text
from gateway.storage import Registry, Storage
from storesense.config import describe_validation_error, read_text_file
from storesense.errors import ConfigError
from storesense.schema import Ident, utcnow

Condition = Literal["dry", "rain", "heavy_rain", "storm", "snow"]
RAINY: frozenset[str] = frozenset({"rain", "heavy_rain", "storm"})
DRY: frozenset[str] = frozenset({"dry"})
# WMO's "wet day" threshold: a day with 1 mm or more is not dry, whatever a feed calls it
WET_DAY_MM = 1.0
FIRST_DAY = date(1970, 1, 1)
CSV_COLUMNS = ("store_id", "date", "condition", "precipitation_mm", "temperature_c")


class WeatherRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: Ident
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="store-local 'YYYY-MM-DD'")
    condition: Condition
    precipitation_mm: float | None = Field(
        None, ge=0.0, le=2000.0, allow_inf_nan=False,
        description="the day's precipitation (the wettest day on record is under 2,000 mm)")
    temperature_c: float | None = Field(
        None, ge=-90.0, le=60.0, allow_inf_nan=False, description="the day's mean temperature")

    @field_validator("date")
    @classmethod
    def _real_day(cls, v: str) -> str:
        try:
            day = date.fromisoformat(v)
        except ValueError as e:
            raise ValueError("not a real date YYYY-MM-DD") from e
        if day < FIRST_DAY:
            raise ValueError(f"date before {FIRST_DAY}")
        return v

    @model_validator(mode="after")
    def _dry_means_dry(self) -> WeatherRecord:
        if (self.condition == "dry" and self.precipitation_mm is not None
                and self.precipitation_mm >= WET_DAY_MM):
            raise ValueError(f"condition 'dry' with {self.precipitation_mm} mm of precipitation "
                             f"(a day with {WET_DAY_MM} mm or more is not dry)")
        return self


class WeatherFileError(ValueError):
    """The file as a whole cannot be read as CSV (not one bad line)."""


def unknown_stores(registry: Registry, records: list[WeatherRecord]) -> list[str]:
    return sorted({r.store_id for r in records} - registry.stores.keys())


def future_days(registry: Registry, records: list[WeatherRecord],
                now: datetime) -> list[str]:
    """'<store> <date>' of records dated after the store's local today: a clock or a feed
    that is wrong; stored, a forecast would pass for a day that was observed."""
    out = []
    for r in records:
        info = registry.stores.get(r.store_id)
        if info is not None and r.date > now.astimezone(info.tz).date().isoformat():
            out.append(f"{r.store_id} {r.date}")
    return out


def upsert(storage: Storage, records: list[WeatherRecord], source: str) -> int:
    at = utc_text(utcnow())
    with storage.transaction() as conn:
        conn.executemany(
            "INSERT INTO weather_day (store_id, local_date, condition, precipitation_mm, "
            "temperature_c, source, updated_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT (store_id, local_date) DO UPDATE "
            "SET condition=excluded.condition, precipitation_mm=excluded.precipitation_mm, "
            "temperature_c=excluded.temperature_c, source=excluded.source, "
            "updated_at=excluded.updated_at",
            [(r.store_id, r.date, r.condition, r.precipitation_mm, r.temperature_c, source, at)
             for r in records])
    return len(records)


def _optional_float(row: dict[str, Any], field: str) -> float | None:
    text = (row.get(field) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a number") from None


def _row_to_record(row: dict[str, Any]) -> WeatherRecord:
    return WeatherRecord(
        store_id=(row.get("store_id") or "").strip(), date=(row.get("date") or "").strip(),
        condition=(row.get("condition") or "").strip(),
        precipitation_mm=_optional_float(row, "precipitation_mm"),
        temperature_c=_optional_float(row, "temperature_c"))


def parse_csv(text: str, registry: Registry,
              now: datetime) -> tuple[list[WeatherRecord], list[dict[str, Any]]]:
    """CSV ``store_id,date,condition[,precipitation_mm][,temperature_c]`` -> (records,
    rejected lines with the reason). Raises WeatherFileError when the CSV itself breaks."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as e:
        raise WeatherFileError(f"line {reader.line_num + 1}: {e}") from e
    missing = [c for c in CSV_COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise WeatherFileError(f"header lacks {missing}; expected {','.join(CSV_COLUMNS)}")
    records: list[WeatherRecord] = []
    rejected: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            rec = _row_to_record(row)
        except ValidationError as e:
            rejected.append({"line": i, "reason": describe_validation_error(e)})
            continue
        except ValueError as e:
            rejected.append({"line": i, "reason": str(e)})
            continue
        if rec.store_id not in registry.stores:
            rejected.append({"line": i, "reason": f"unknown store {rec.store_id!r}"})
        elif future_days(registry, [rec], now):
            rejected.append({"line": i, "reason": f"date {rec.date} is after the store's "
                                                  f"local today"})
        else:
            records.append(rec)
    return records, rejected


def days(conn: Database, store_id: str, start: date,
         end: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT local_date, condition, precipitation_mm, temperature_c FROM weather_day "
        "WHERE store_id=? AND local_date BETWEEN ? AND ? ORDER BY local_date",
        (store_id, start.isoformat(), end.isoformat()))
    return [{"date": r[0], "condition": r[1], "precipitation_mm": r[2], "temperature_c": r[3]}
            for r in rows]


# store-days that have weather and traffic, with the day's transactions when POS has them
_STORE_DAYS = """
SELECT w.store_id, w.local_date, w.condition, r.visitors,
       (SELECT SUM(p.transactions) FROM pos AS p
        WHERE p.store_id = w.store_id AND p.local_date = w.local_date)
FROM weather_day AS w JOIN rollup_day AS r
    ON r.store_id = w.store_id AND r.local_date = w.local_date
WHERE w.local_date BETWEEN ? AND ? AND {where}
"""


def _summary(store_days: list[tuple[int, int | None]]) -> dict[str, Any]:
    """Mean visitors per store-day, and conversion pooled over the store-days with POS."""
    n = len(store_days)
    visitors = sum(v for v, _ in store_days)
    with_pos = [(v, t) for v, t in store_days if t is not None]
    pos_visitors = sum(v for v, _ in with_pos)
    pos_tx = sum(t for _, t in with_pos if t is not None)
    return {"days": n, "visitors": visitors,
            "visitors_per_day": round(visitors / n, 1) if n else None,
            "days_with_pos": len(with_pos), "transactions": pos_tx,
            "conversion": round(pos_tx / pos_visitors, 4) if pos_visitors else None}


def compare(conn: Database, registry: Registry, ids: StoreIds, start: date,
            end: date, now: datetime) -> dict[str, Any]:
    """Rainy against dry store-days in [start, end]: a store-day counts when it has both a
    weather record and traffic, and is over (a store's today is left out: half a day)."""
    where, params = store_filter(ids, "w.store_id")
    groups: dict[str, list[tuple[int, int | None]]] = {"rainy": [], "dry": [], "snow": []}
    today: dict[str, str] = {}
    for sid, day, condition, visitors, tx in conn.execute(
            _STORE_DAYS.format(where=where), [start.isoformat(), end.isoformat(), *params]):
        info = registry.stores.get(sid)
        if info is None:
            continue
        if sid not in today:
            today[sid] = now.astimezone(info.tz).date().isoformat()
        if day >= today[sid]:
            continue
        kind = "rainy" if condition in RAINY else "dry" if condition in DRY else "snow"
        groups[kind].append((int(visitors), int(tx) if tx is not None else None))
    rainy, dry = _summary(groups["rainy"]), _summary(groups["dry"])
    diff = None
    if rainy["visitors_per_day"] is not None and dry["visitors_per_day"]:
        diff = round(100.0 * (rainy["visitors_per_day"] - dry["visitors_per_day"])
                     / dry["visitors_per_day"], 1)
    return {"start": start.isoformat(), "end": end.isoformat(), "rainy": rainy, "dry": dry,
            "snow": _summary(groups["snow"]), "visitors_per_day_change_pct": diff}


def default_span(today: date, days_back: int = 28) -> tuple[date, date]:
    """The 28 days up to the day before ``today``: whole days only."""
    end = today - timedelta(days=1)
    return end - timedelta(days=days_back - 1), end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=db_target, required=True, help=DB_HELP)
    parser.add_argument("file", type=Path, help="CSV: store_id,date,condition"
                        "[,precipitation_mm][,temperature_c]; date store-local, condition "
                        "one of dry, rain, heavy_rain, storm, snow")


def run(args: argparse.Namespace) -> int:
    """``storesense gateway import-weather``: prints what was stored and each rejected line;
    exit status 1 when a line was rejected (the good lines are stored all the same)."""
    text = read_text_file(args.file, "weather")
    storage = Storage(args.db)
    try:
        records, rejected = parse_csv(text, storage.registry, utcnow())
        stored = upsert(storage, records, "csv")
    except WeatherFileError as e:
        raise ConfigError(f"weather file {args.file}: {e}") from e
    finally:
        storage.close()
    print(json.dumps({"stored": stored, "rejected": rejected}, ensure_ascii=False, indent=2))
    return 1 if rejected else 0
