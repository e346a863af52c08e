"""``GET /api/v1/members``: member share of transactions and join rate of non-members
(definitions in gateway/members.py and docs/api.md)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from gateway import members as mb
from gateway.routes import Day, NowDep, SelectionDep, StorageDep, Who, _ids, _selection_span

router = APIRouter(tags=["members"])


@router.get("/members")
def members(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
            granularity: Literal["hour", "day"] = "day", start: Day | None = None,
            end: Day | None = None) -> dict[str, Any]:
    """Member transactions, new members, ``member_share`` (members ÷ transactions) and
    ``join_rate`` (new members ÷ transactions by customers who came as non-members) in total,
    per store-local period and per store, over the POS hours that reported members."""
    ids = _ids(storage, who, sel)
    start, end = _selection_span(storage, ids, now, start, end)
    return mb.members(storage.read(), ids, granularity, start, end)
