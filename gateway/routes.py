"""The /api/v1 endpoints of docs/api.md. Handlers are thin: scope, query, shape."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gateway import overview as ov
from gateway import pos, queries
from gateway.auth import Principal, authenticate
from gateway.config import GatewaySettings
from gateway.db import Database
from gateway.errors import ApiError
from gateway.floorplan import PlanImageError, check_plan_image
from gateway.period_cache import cache_for
from gateway.registry import StoreRecord, parse_file
from gateway.scope import check_store, select
from gateway.storage import Storage
from storesense import __version__
from storesense.config import describe_validation_error
from storesense.errors import ConfigError

MAX_UPLOAD = 10 * 1024 * 1024
router = APIRouter()
# Every date the API takes: far enough inside datetime's range that a day's UTC bounds in any
# zone, a 400-day trend or an 800-day span can be computed without OverflowError.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def _in_range(d: date) -> date:
    if not FIRST_DAY <= d <= LAST_DAY:
        raise ValueError(f"date must be between {FIRST_DAY} and {LAST_DAY}")
    return d


Day = Annotated[date, AfterValidator(_in_range)]
_POS_RECORDS = TypeAdapter(list[pos.PosRecord])


async def _json_body(request: Request) -> Any:
    """The request's JSON, read only now: after authentication, never before (a body
    parameter would make FastAPI read and parse it before the token is checked)."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except RecursionError as e:
        raise ApiError(400, "bad_request", "JSON body is nested too deeply") from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, "bad_request", f"body is not valid JSON: {e}") from e


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    storage.refresh_registry(max_age_s=5.0)  # another process may have imported stores
    return storage


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


StorageDep = Annotated[Storage, Depends(get_storage)]
NowDep = Annotated[datetime, Depends(get_now)]


def principal(request: Request, storage: StorageDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <token>' header")
    who = authenticate(storage, token.strip())
    if who is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    return who


Who = Annotated[Principal, Depends(principal)]


def hq_only(who: Who) -> Principal:
    if not who.is_hq:
        raise ApiError(403, "forbidden", "this endpoint needs an hq token")
    return who


HQ = Annotated[Principal, Depends(hq_only)]


class Selection:
    """store_id / region / franchisee query filters (AND), within the token's scope."""

    def __init__(self, store_id: str | None = None, region: str | None = None,
                 franchisee: str | None = None) -> None:
        self.store_id, self.region, self.franchisee = store_id, region, franchisee


SelectionDep = Annotated[Selection, Depends()]


def _ids(storage: Storage, who: Principal, sel: Selection) -> list[str]:
    return select(storage, who, sel.store_id, sel.region, sel.franchisee)


def _span(start: date | None, end: date | None, default: date) -> tuple[date, date]:
    end = end or start or default
    start = start or end
    if start > end:
        raise ApiError(400, "bad_request", f"start {start} is after end {end}")
    if (end - start).days > 800:
        raise ApiError(400, "bad_request", "date range longer than 800 days")
    return start, end


def _store_today(storage: Storage, store_id: str, now: datetime) -> date:
    return now.astimezone(storage.registry.stores[store_id].tz).date()


def _todays(storage: Storage, ids: list[str], now: datetime) -> tuple[date, date]:
    """The earliest and the latest local today of these stores (the UTC date when none is
    registered): a chain in one zone gets its today, not the UTC date, which is the day
    before or after it for hours every day; a chain over several zones gets every store's."""
    stores = storage.registry.stores
    found = {_store_today(storage, s, now) for s in ids if s in stores}
    return (min(found), max(found)) if found else (now.date(), now.date())


def _selection_span(storage: Storage, ids: list[str], now: datetime, start: date | None,
                    end: date | None) -> tuple[date, date]:
    """The local dates asked for, or without any, the stores' local todays (``_todays``)."""
    if start is None and end is None:
        start, end = _todays(storage, ids, now)
    return _span(start, end, now.date())


def _read(storage: Storage) -> Database:
    return storage.read()


@router.get("/health")
def health(request: Request, response: Response) -> dict[str, Any]:
    """ok, or 503 "degraded" while the gateway's ingest has no broker (a load balancer or a
    monitor then sees it); the ingest's figures when this process runs one."""
    ingest = request.app.state.ingest
    if ingest is None:
        return {"status": "ok", "version": __version__}
    state = ingest()
    if not state["broker_connected"]:
        response.status_code = 503
    status = "ok" if state["broker_connected"] else "degraded"
    return {"status": status, "version": __version__, "ingest": state}


@router.get("/me")
def me(who: Who, storage: StorageDep) -> dict[str, Any]:
    return {"name": who.name, "scope": who.kind, "scope_value": who.value or None,
            "store_ids": who.store_ids(storage.registry)}


@router.get("/stores")
def stores(who: Who, storage: StorageDep) -> list[dict[str, Any]]:
    return storage.list_stores(who.store_ids(storage.registry))


@router.put("/stores/{store_id}")
async def put_store(store_id: str, request: Request, _: HQ,
                    storage: StorageDep) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "body must be a JSON object (a store record)")
    return await run_in_threadpool(_put_store, storage, store_id, body)


def _put_store(storage: Storage, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {**body, "store_id": body.get("store_id", store_id)}
    if body["store_id"] != store_id:
        raise ApiError(400, "bad_request", "store_id in body differs from the path")
    try:
        record = StoreRecord.model_validate(body)
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_error(e)) from e
    storage.upsert_stores([record])
    return storage.list_stores([store_id])[0]


# The uploads read their form in the route, after the token is checked (an UploadFile
# parameter would have FastAPI read the whole form first); this documents the form instead.
FILE_FORM: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}}}}}


async def _uploaded_file(request: Request) -> tuple[str, bytes]:
    """(file name, content) of the multipart field ``file``."""
    form = await request.form(max_files=1, max_fields=16)  # a bad form: 400 from Starlette
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ApiError(422, "invalid_request",
                       "expected a multipart/form-data body with a file field 'file'")
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"file larger than {MAX_UPLOAD} bytes")
    return file.filename or "upload", content


async def _uploaded_text(request: Request, what: str) -> str:
    """The uploaded CSV as text (UTF-8, a spreadsheet's BOM dropped); 422 naming ``what``
    the file is when it is not UTF-8."""
    _name, content = await _uploaded_file(request)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ApiError(422, "invalid_request", f"{what} file is not UTF-8 text") from e


@router.post("/stores/import", openapi_extra=FILE_FORM)
async def import_stores(request: Request, _: HQ, storage: StorageDep) -> dict[str, int]:
    name, content = await _uploaded_file(request)
    try:
        records = parse_file(name, content)
    except ConfigError as e:
        raise ApiError(422, "invalid_request", str(e)) from e
    return {"imported": storage.upsert_stores(records)}


@router.put("/stores/{store_id}/floorplan")
async def put_floorplan(store_id: str, request: Request, _: HQ,
                        storage: StorageDep) -> dict[str, Any]:
    check_store(storage, _, store_id)
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"image larger than {MAX_UPLOAD} bytes")
    try:
        kind = await run_in_threadpool(check_plan_image, body)  # decoding takes a while
    except PlanImageError as e:
        if e.unsupported:
            raise ApiError(415, "unsupported_media_type", str(e)) from e
        raise ApiError(422, "invalid_request", str(e)) from e
    storage.set_floorplan(store_id, body, kind)
    return {"store_id": store_id, "content_type": kind, "bytes": len(body)}


@router.get("/stores/{store_id}/floorplan")
def get_floorplan(store_id: str, who: Who, storage: StorageDep) -> Response:
    check_store(storage, who, store_id)
    found = storage.get_floorplan(store_id)
    if found is None:
        raise ApiError(404, "not_found", f"store {store_id!r} has no floor plan")
    return Response(found[0], media_type=found[1])


@router.get("/traffic")
def traffic(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
            granularity: Literal["minute", "hour", "day"] = "hour",
            start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    ids = _ids(storage, who, sel)
    start, end = _selection_span(storage, ids, now, start, end)
    if granularity == "minute" and (end - start).days > 6:
        raise ApiError(400, "bad_request", "minute granularity: at most 7 days")
    series = queries.traffic(_read(storage), ids, granularity, start, end,
                            storage.registry)
    return {"granularity": granularity, "start": start.isoformat(), "end": end.isoformat(),
            "series": series}


def _overview_days(n: int) -> int:
    if n not in ov.PERIODS:
        raise ValueError(f"days must be one of {', '.join(map(str, ov.PERIODS))}")
    return n


# a Literal[1, 7, 28] would refuse "7": query values arrive as text
OverviewDays = Annotated[int, AfterValidator(_overview_days), Query(
    description="period length in store-local days, ending on date",
    json_schema_extra={"enum": list(ov.PERIODS)})]


@router.get("/overview")
def overview(who: Who, storage: StorageDep, settings: Annotated[
                 GatewaySettings, Depends(get_settings)], now: NowDep, sel: SelectionDep,
             date: Day | None = None,
             trend_days: Annotated[int, Query(ge=1, le=400)] = 28,
             days: OverviewDays = 1) -> Response:
    ids = _ids(storage, who, sel)
    body = ov.overview(_read(storage), storage.registry, ids, date, trend_days, now,
                       settings.status_interval_s, days, cache_for(storage))
    # thousands of store rows: msgspec (~2 ms for 4,000 stores, json.dumps ~13-20 ms), not
    # FastAPI's per-value jsonable_encoder
    return Response(msgspec.json.encode(body), media_type="application/json")


@router.get("/stores/{store_id}/zones")
def zones(store_id: str, who: Who, storage: StorageDep, now: NowDep,
          start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    check_store(storage, who, store_id)
    start, end = _span(start, end, _store_today(storage, store_id, now))
    return {"zones": queries.zones(_read(storage), store_id, start, end)}


@router.get("/stores/{store_id}/transitions")
def transitions(store_id: str, who: Who, storage: StorageDep, now: NowDep,
                start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    check_store(storage, who, store_id)
    start, end = _span(start, end, _store_today(storage, store_id, now))
    return {"transitions": queries.transitions(_read(storage), store_id, start, end)}


@router.get("/stores/{store_id}/heatmap")
def heatmap(store_id: str, who: Who, storage: StorageDep, now: NowDep,
            start: Day | None = None, end: Day | None = None,
            camera_id: str | None = None) -> dict[str, Any]:
    check_store(storage, who, store_id)
    start, end = _span(start, end, _store_today(storage, store_id, now))
    found = queries.heatmap(_read(storage), store_id, start, end, camera_id)
    if found is None:
        which = f"camera {camera_id!r}" if camera_id else "any camera"
        raise ApiError(404, "not_found",
                       f"no heatmap for {which} of store {store_id!r} from {start} to {end}")
    return found


@router.get("/stores/{store_id}/demographics")
def demographics(store_id: str, who: Who, storage: StorageDep, now: NowDep,
                 start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    check_store(storage, who, store_id)
    start, end = _span(start, end, _store_today(storage, store_id, now))
    return queries.demographics(_read(storage), store_id, start, end)


@router.get("/conversion")
def conversion(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
               granularity: Literal["hour", "day"] = "day",
               start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    ids = _ids(storage, who, sel)
    start, end = _selection_span(storage, ids, now, start, end)
    return {"granularity": granularity, "start": start.isoformat(), "end": end.isoformat(),
            "series": queries.conversion(_read(storage), ids, granularity, start, end)}


@router.post("/pos")
async def post_pos(request: Request, _: HQ, storage: StorageDep) -> dict[str, int]:
    try:
        records = _POS_RECORDS.validate_python(await _json_body(request))
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_error(e)) from e
    return await run_in_threadpool(_store_pos, storage, records)


def _store_pos(storage: Storage, records: list[pos.PosRecord]) -> dict[str, int]:
    unknown = pos.unknown_stores(storage, records)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown stores {unknown}")
    return {"stored": pos.upsert(storage, records)}


@router.post("/pos/upload", openapi_extra=FILE_FORM)
async def upload_pos(request: Request, _: HQ, storage: StorageDep) -> dict[str, Any]:
    text = await _uploaded_text(request, "POS")
    try:
        records, rejected = pos.parse_csv(text, set(storage.registry.stores))
    except pos.PosFileError as e:
        raise ApiError(422, "invalid_request", f"POS file: {e}") from e
    return {"stored": pos.upsert(storage, records), "rejected": rejected}


@router.get("/devices")
def devices(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
            settings: Annotated[GatewaySettings, Depends(get_settings)]) -> list[dict[str, Any]]:
    ids = _ids(storage, who, sel)
    return ov.devices(_read(storage), ids, now, settings.status_interval_s)


@router.get("/deadletters")
def deadletters(_: HQ, storage: StorageDep,
                limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
    return queries.dead_letters(_read(storage), limit)
