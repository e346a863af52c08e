"""Daily weather: the weather feed's push, a CSV upload, a store's days, and rainy days set
against dry ones (gateway/weather.py, docs/api.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from gateway import weather
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.routes import (
    FILE_FORM,
    Day,
    NowDep,
    SelectionDep,
    StorageDep,
    Who,
    _ids,
    _json_body,
    _span,
    _todays,
    _uploaded_text,
)
from gateway.scope import check_store
from gateway.storage import Storage
from storesense.config import describe_validation_error

router = APIRouter(tags=["weather"])
MAX_RECORDS = 20_000  # a chain's day is ~4,000 records; the body limit (1 MB) bounds it too
_RECORDS = TypeAdapter(Annotated[list[weather.WeatherRecord], Field(max_length=MAX_RECORDS)])


def weather_writer(who: Who) -> Principal:
    if who.kind not in ("hq", "weather"):
        raise ApiError(403, "forbidden", "this endpoint needs an hq or weather token")
    return who


Writer = Annotated[Principal, Depends(weather_writer)]


def _weather_span(storage: Storage, ids: list[str], now: datetime, start: date | None,
                  end: date | None) -> tuple[date, date]:
    """The dates asked for, or the 28 days before the earliest local today of the stores:
    days that are over for every one of them."""
    if start is None and end is None:
        return weather.default_span(_todays(storage, ids, now)[0])
    return _span(start, end, now.date())


@router.post("/weather")
async def push_weather(request: Request, _: Writer, storage: StorageDep,
                       now: NowDep) -> dict[str, int]:
    """A weather feed's push: a JSON list of ``{"store_id", "date", "condition",
    "precipitation_mm", "temperature_c"}``, all stored or none (422 naming the record and
    field, 400 naming unknown stores or dates after a store's local today). Upsert on store
    and date: pushing the same records again changes nothing."""
    try:
        records = _RECORDS.validate_python(await _json_body(request))
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_error(e)) from e
    unknown = weather.unknown_stores(storage.registry, records)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown stores {unknown[:20]}")
    future = weather.future_days(storage.registry, records, now)
    if future:
        raise ApiError(400, "bad_request",
                       f"dates after the store's local today: {future[:20]}")
    return {"stored": await run_in_threadpool(weather.upsert, storage, records, "push")}


@router.post("/weather/upload", openapi_extra=FILE_FORM)
async def upload_weather(request: Request, _: Writer, storage: StorageDep,
                         now: NowDep) -> dict[str, Any]:
    """Multipart CSV ``store_id,date,condition[,precipitation_mm][,temperature_c]``: good
    lines are stored, bad ones listed with their reason."""
    text = await _uploaded_text(request, "weather")
    try:
        records, rejected = weather.parse_csv(text, storage.registry, now)
    except weather.WeatherFileError as e:
        raise ApiError(422, "invalid_request", f"weather file: {e}") from e
    stored = await run_in_threadpool(weather.upsert, storage, records, "csv")
    return {"stored": stored, "rejected": rejected}


@router.get("/stores/{store_id}/weather")
def store_weather(store_id: str, who: Who, storage: StorageDep, now: NowDep,
                  start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    check_store(storage, who, store_id)
    start, end = _weather_span(storage, [store_id], now, start, end)
    return {"store_id": store_id, "start": start.isoformat(), "end": end.isoformat(),
            "days": weather.days(storage.read(), store_id, start, end)}


@router.get("/weather/compare")
def compare(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
            start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    """Rainy against dry store-days in the span (default: the 28 days to the stores' local
    yesterday): mean visitors per store-day, conversion pooled over the days with POS, and how
    many days each."""
    ids = _ids(storage, who, sel)
    start, end = _weather_span(storage, ids, now, start, end)
    return weather.compare(storage.read(), storage.registry, ids, start, end, now)
