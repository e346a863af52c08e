"""Queues: a zone marked as a queue (``ZoneSpec.kind == "queue"`` with an ``exit_edge``).

Its length is the number of people in it (visits open, the zone tracker's occupancy), sampled
every frame. Each visit that ends is one of:

- served: the person left by the exit edge (towards the till); their wait is the visit's
  dwell (first to last time inside);
- abandoned: left by another edge after waiting at least ``ABANDON_MIN_S``;
- passed: left by another edge sooner (walking across the queue area is not queueing), not
  reported;
- lost: the track ended inside the queue (occluded, or the tracker gave up), so where they
  went is unknown: reported apart rather than guessed.

Which edge a person left by is the polygon edge nearest to their first foot point seen
outside after their last one inside.

Pure: ``update(ids, feet, t)`` returns the queue visits that ended; ``end(ids)`` those of
tracks that ended; ``length()`` the people in the queue now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.analytics.zones import Visit, ZoneTracker, inside_polygon
from storesense.schema import ZoneSettings, ZoneSpec

# Shorter than this and left by another edge: someone crossing the queue area, not a person
# who gave up waiting (10 s is longer than it takes to walk through any till queue zone).
ABANDON_MIN_S = 10.0

Outcome = Literal["served", "abandoned", "passed", "lost"]


@dataclass(frozen=True)
class QueueVisit:
    zone: str
    track_id: int
    wait_s: float
    outcome: Outcome


def nearest_edge(polygon: list[tuple[float, float]], point: tuple[float, float]) -> int:
    """Index i of the polygon edge (vertex i to vertex i+1, the last to the first) nearest
    to the point."""
    p = np.asarray(point, np.float64)
    a = np.asarray(polygon, np.float64)
    b = np.roll(a, -1, axis=0)
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    u = np.clip(((p - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
    closest = a + u[:, None] * ab
    return int(np.argmin(np.hypot(*(closest - p).T)))


@dataclass
class QueueTracker:
    spec: ZoneSpec
    settings: ZoneSettings = field(default_factory=ZoneSettings)
    abandon_min_s: float = ABANDON_MIN_S
    _zone: ZoneTracker = field(init=False)
    _exit_point: dict[int, tuple[float, float]] = field(default_factory=dict)
    _inside: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.spec.exit_edge is None:
            raise ValueError(f"queue zone {self.spec.name!r} needs an exit_edge")
        self._zone = ZoneTracker(self.spec, self.settings)

    def length(self) -> int:
        return self._zone.occupancy()

    def update(
        self, ids: npt.NDArray[np.int64], feet: npt.NDArray[np.floating], t: float
    ) -> list[QueueVisit]:
        inside = inside_polygon(self.spec.polygon, feet) if len(ids) else np.zeros(0, bool)
        for tid, ins, pt in zip(ids.tolist(), inside.tolist(), np.asarray(feet).tolist(),
                                strict=True):
            if ins:
                self._inside.add(tid)
                self._exit_point.pop(tid, None)
            elif tid in self._inside:  # first point outside after being inside
                self._inside.discard(tid)
                self._exit_point[tid] = (pt[0], pt[1])
        _, left = self._zone.update(ids, feet, t)
        return [self._judge(v) for v in left]

    def end(self, ids: Iterable[int]) -> list[QueueVisit]:
        ids = list(ids)
        out = [self._judge(v) for v in self._zone.end(ids)]
        for tid in ids:
            self._inside.discard(tid)
            self._exit_point.pop(tid, None)
        return out

    def forget(self, ids: Iterable[int]) -> None:
        """Drop these tracks without judging their visits (tracks marked staff)."""
        for tid in ids:
            self._zone.end([tid])
            self._inside.discard(tid)
            self._exit_point.pop(tid, None)

    def _judge(self, v: Visit) -> QueueVisit:
        pt = self._exit_point.pop(v.track_id, None)
        if pt is None:
            return QueueVisit(v.zone, v.track_id, v.dwell_s, "lost")
        if nearest_edge(self.spec.polygon, pt) == self.spec.exit_edge:
            return QueueVisit(v.zone, v.track_id, v.dwell_s, "served")
        outcome: Outcome = "abandoned" if v.dwell_s >= self.abandon_min_s else "passed"
        return QueueVisit(v.zone, v.track_id, v.dwell_s, outcome)
