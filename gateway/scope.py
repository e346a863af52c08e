"""Which stores a request may touch: the token's scope intersected with the selection.

Out-of-scope stores answer 403 (the store exists but is not yours); a store unknown to an
hq token answers 404.
"""

from __future__ import annotations

from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.storage import Storage


def check_store(storage: Storage, who: Principal, store_id: str) -> str:
    registry = storage.registry
    if store_id in registry.stores and store_id in who.store_ids(registry):
        return store_id
    if who.is_hq:
        raise ApiError(404, "not_found", f"unknown store {store_id!r}")
    raise ApiError(403, "forbidden", f"store {store_id!r} is outside scope {who.kind}")


def select(storage: Storage, who: Principal, store_id: str | None = None,
           region: str | None = None, franchisee: str | None = None) -> list[str]:
    """Store ids matching the filters (AND) within the principal's scope."""
    if store_id is not None:
        check_store(storage, who, store_id)
    stores = storage.registry.stores
    return [
        s for s in who.store_ids(storage.registry)
        if (store_id is None or s == store_id)
        and (region is None or stores[s].region == region)
        and (franchisee is None or stores[s].franchisee == franchisee)
    ]
