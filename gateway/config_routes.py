"""/api/v1/config: publish a camera's configuration from HQ, its history, what each device
runs, and rollback (docs/api.md, gateway/config_history.py).

Publishing and rollback need an hq token: a camera's lines and zones define what the chain's
figures mean, so they change in one place that sees every store (a franchisee's installer
sets a camera up on site, on the edge box's own page, and that arrives here as history).
Reading is open to any token within its scope, so a franchisee sees what its stores run.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from gateway import config_history as ch
from gateway.auth import Principal
from gateway.config_publisher import ConfigPublisher
from gateway.errors import ApiError
from gateway.rollups import utc_text
from gateway.routes import HQ, StorageDep, Who, _json_body
from gateway.scope import check_store
from gateway.storage import Storage
from storesense.config import describe_validation_error
from storesense.schema import AnalyticsConfig

router = APIRouter()


def _camera(storage: Storage, who: Principal, store_id: str, camera_id: str) -> None:
    check_store(storage, who, store_id)
    if (store_id, camera_id) not in storage.registry.roles:
        raise ApiError(404, "not_found", f"store {store_id!r} has no camera {camera_id!r}")


def _publisher(request: Request) -> ConfigPublisher | None:
    return getattr(request.app.state, "config_publisher", None)


@router.get("/config/{store_id}")
def store_config(store_id: str, who: Who, storage: StorageDep) -> dict[str, Any]:
    """Each camera of the store: its latest version and what each device says it runs."""
    check_store(storage, who, store_id)
    conn = storage.read()
    cams = sorted(c for s, c in storage.registry.roles if s == store_id)
    run = ch.running(conn, store_id)
    out = []
    for cam in cams:
        latest = ch.history(conn, store_id, cam, limit=1)
        out.append({"camera_id": cam,
                    "latest": latest[0].public() if latest else None,
                    "running": _with_versions(conn, store_id, cam, run)})
    return {"store_id": store_id, "cameras": out}


def _with_versions(conn: Any, store_id: str, camera_id: str,
                   run: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The devices' reports for one camera, with the history version their text names."""
    by_text = ch.versions_by_text(conn, store_id, camera_id)
    return [{**r, "version": by_text.get(r["config_version"] or "")}
            for r in run if r["camera_id"] == camera_id]


@router.get("/config/{store_id}/{camera_id}")
def camera_config(store_id: str, camera_id: str, who: Who, storage: StorageDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """The camera's history (newest first) and what each device says it runs."""
    _camera(storage, who, store_id, camera_id)
    conn = storage.read()
    return {"store_id": store_id, "camera_id": camera_id,
            "history": [e.public() for e in ch.history(conn, store_id, camera_id, limit)],
            "running": _with_versions(conn, store_id, camera_id, ch.running(conn, store_id))}


@router.put("/config/{store_id}/{camera_id}", status_code=201)
async def publish_config(store_id: str, camera_id: str, request: Request, who: HQ,
                         storage: StorageDep) -> dict[str, Any]:
    """Body: ``{"analytics": {...}}`` (AnalyticsConfig: lines, zones, settings). Stored as the
    camera's next version, then published retained."""
    _camera(storage, who, store_id, camera_id)
    body = await _json_body(request)
    if not isinstance(body, dict) or set(body) != {"analytics"}:
        raise ApiError(422, "invalid_request", 'body must be {"analytics": {...}}')
    try:
        analytics = AnalyticsConfig.model_validate(body["analytics"])
    except ValidationError as e:
        raise ApiError(422, "invalid_request",
                       "analytics." + describe_validation_error(e)) from e
    return await run_in_threadpool(_add_and_publish, storage, _publisher(request), store_id,
                                   camera_id, analytics, "hq", who.name, None)


@router.post("/config/{store_id}/{camera_id}/rollback", status_code=201)
async def rollback(store_id: str, camera_id: str, request: Request, who: HQ,
                   storage: StorageDep) -> dict[str, Any]:
    """Body: ``{"version": n}``: publish version n's configuration again as a new version."""
    _camera(storage, who, store_id, camera_id)
    body = await _json_body(request)
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or set(body) != {"version"}:
        raise ApiError(422, "invalid_request", 'body must be {"version": <integer>}')
    earlier = ch.get(storage.read(), store_id, camera_id, version)
    if earlier is None:
        raise ApiError(404, "not_found", f"camera {store_id}/{camera_id} has no version "
                       f"{version}")
    return await run_in_threadpool(_add_and_publish, storage, _publisher(request), store_id,
                                   camera_id, earlier.message().analytics, "rollback",
                                   who.name, version)


def _add_and_publish(storage: Storage, publisher: ConfigPublisher | None, store_id: str,
                     camera_id: str, analytics: AnalyticsConfig, source: str, who: str,
                     rollback_of: int | None) -> dict[str, Any]:
    with storage.transaction() as conn:
        entry = ch.add(conn, store_id, camera_id, analytics, source, who,
                       utc_text(storage.clock()), rollback_of=rollback_of)
    why = ("this gateway does not publish configurations: [config_publish] username is not "
           "set (docs/operations.md)" if publisher is None else publisher.publish(entry))
    fresh = ch.get(storage.read(), store_id, camera_id, entry.version) or entry
    return {**fresh.public(), "published": why is None, "not_published_because": why}
