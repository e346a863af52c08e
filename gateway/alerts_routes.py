"""/api/v1/alerts: alerts raised and resolved (docs/api.md, gateway/alerts.py) and each
store's occupancy limit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from gateway import alerts_store
from gateway.errors import ApiError
from gateway.rollups import utc_text
from gateway.routes import HQ, SelectionDep, StorageDep, Who, _ids, _json_body
from gateway.scope import check_store

router = APIRouter()


@router.get("/alerts")
def alerts(who: Who, storage: StorageDep, sel: SelectionDep,
           state: Literal["open", "resolved", "all"] = "all",
           limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """Open alerts first, then newest; within the token's scope and the filters."""
    return alerts_store.listing(storage.read(), _ids(storage, who, sel), state, limit)


@router.get("/alerts/limits")
def limits(who: Who, storage: StorageDep) -> dict[str, int]:
    """store_id -> occupancy limit, for the stores in scope that have one."""
    mine = set(who.store_ids(storage.registry))
    return {s: n for s, n in alerts_store.limits(storage.read()).items() if s in mine}


@router.put("/alerts/limits/{store_id}")
async def put_limit(store_id: str, request: Request, who: HQ,
                    storage: StorageDep) -> dict[str, Any]:
    """Body: ``{"occupancy_limit": n}`` (1..100000), or null to remove the limit."""
    check_store(storage, who, store_id)
    body = await _json_body(request)
    n = body.get("occupancy_limit", "missing") if isinstance(body, dict) else "missing"
    if not (n is None or (isinstance(n, int) and not isinstance(n, bool)
                          and 1 <= n <= 100_000)) or set(body) != {"occupancy_limit"}:
        raise ApiError(422, "invalid_request",
                       'body must be {"occupancy_limit": <integer 1..100000 or null>}')
    with storage.transaction() as conn:
        alerts_store.set_limit(conn, store_id, n, who.name, utc_text(storage.clock()))
    return {"store_id": store_id, "occupancy_limit": n}
