"""/api/v1 endpoints for the retail figures of issue 16: passes, unique visitors, groups and
staff passes with conversion per visitor and per group, and queues (docs/retail-figures.md).
Handlers are thin: scope, query, shape; the response models name every figure in OpenAPI."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway import retail
from gateway.routes import (
    Day,
    NowDep,
    SelectionDep,
    StorageDep,
    Who,
    _ids,
    _selection_span,
    _span,
    _store_today,
)
from gateway.scope import check_store

router = APIRouter(tags=["retail figures"])


class VisitorsPeriod(BaseModel):
    period: str = Field(description="store-local hour (YYYY-MM-DDTHH:00) or date")
    passes: int = Field(description="entrance 'in' crossings by people who are not staff")
    unique_visitors: int = Field(
        description="passes that were not re-entries within the store's re-entry window")
    groups: int = Field(description="groups that crossed in together (a person alone is one)")
    staff_in: int = Field(description="staff passes in: entrance crossings by staff tracks")
    staff_out: int = Field(description="staff passes out")
    staff_tracks: int = Field(description="tracks marked staff (staff zone or staff line)")
    transactions: int | None = Field(description="POS transactions; null without POS data")
    conversion_per_visitor: float | None = Field(
        description="transactions / unique visitors")
    conversion_per_group: float | None = Field(description="transactions / groups")


class VisitorsResponse(BaseModel):
    granularity: Literal["hour", "day"]
    start: str
    end: str
    series: list[VisitorsPeriod]


class QueueFigures(BaseModel):
    camera_id: str
    zone: str
    length_avg: float | None = Field(description="people in the queue, time-weighted mean")
    length_max: int = Field(description="the most people in the queue in one window")
    served: int = Field(description="visits that left by the queue's exit edge")
    abandoned: int = Field(description="visits that waited and left by another edge")
    lost: int = Field(description="visits whose track ended inside the queue")
    abandonment_rate: float | None = Field(description="abandoned / (served + abandoned)")
    wait_p50_s: float | None = Field(description="median wait of served visits, seconds")
    wait_p90_s: float | None = Field(description="90th percentile wait of served visits")
    wait_histogram: list[int] = Field(description="served visits per DWELL_BIN_EDGES_S bin")


class QueuesResponse(BaseModel):
    queues: list[QueueFigures]


@router.get("/visitors", response_model=VisitorsResponse)
def visitors(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
             granularity: Literal["hour", "day"] = "day",
             start: Day | None = None, end: Day | None = None) -> VisitorsResponse:
    """Passes, unique visitors, groups and staff passes per store-local period, with
    conversion per visitor and per group where POS data exists."""
    ids = _ids(storage, who, sel)
    start, end = _selection_span(storage, ids, now, start, end)
    series = retail.visitors(storage.read(), ids, granularity, start, end)
    return VisitorsResponse(granularity=granularity, start=start.isoformat(),
                            end=end.isoformat(),
                            series=[VisitorsPeriod(**p) for p in series])


@router.get("/stores/{store_id}/queues", response_model=QueuesResponse)
def queues(store_id: str, who: Who, storage: StorageDep, now: NowDep,
           start: Day | None = None, end: Day | None = None) -> QueuesResponse:
    """Queue zones: length, waits (p50, p90) of served visits, abandonment."""
    check_store(storage, who, store_id)
    start, end = _span(start, end, _store_today(storage, store_id, now))
    found = retail.queues(storage.read(), store_id, start, end)
    return QueuesResponse(queues=[QueueFigures(**q) for q in found])
