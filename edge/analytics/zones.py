"""Polygon zones: occupancy, entries and dwell per visit.

Pure: ``ZoneTracker.update(ids, feet, t)`` takes track ids and normalised foot points and
returns the visits that started and ended. A visit starts after ``inertia_frames``
consecutive observations inside (so a box flickering over the edge is not a visit), and ends
once the person has been seen outside for longer than ``exit_grace_s`` (so a box flickering
over the edge does not split one visit into two), or when the track ends (``end(ids)``, told
by the camera's track lifetime table): a person hidden behind someone keeps their visit open
until the tracker finds them again or gives them up. Dwell = last inside time - first inside
time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from storesense.schema import ZoneSettings, ZoneSpec


@dataclass(frozen=True)
class Visit:
    zone: str
    track_id: int
    start: float
    end: float | None  # None while the visit is open

    @property
    def dwell_s(self) -> float:
        return 0.0 if self.end is None else max(0.0, self.end - self.start)


@dataclass
class _State:
    inside_n: int = 0
    first_inside_t: float = 0.0
    visit_start: float | None = None
    last_inside_t: float = 0.0
    seen_outside: bool = False  # seen outside since last inside


def inside_polygon(
    polygon: list[tuple[float, float]], feet: npt.NDArray[np.floating]
) -> npt.NDArray[np.bool_]:
    """Points inside or on the edge of the polygon (normalised coordinates)."""
    poly = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return np.array(
        [cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in feet], bool
    )


@dataclass
class ZoneTracker:
    spec: ZoneSpec
    settings: ZoneSettings = field(default_factory=ZoneSettings)
    _states: dict[int, _State] = field(default_factory=dict)

    def occupancy(self) -> int:
        return sum(1 for s in self._states.values() if s.visit_start is not None)

    def update(
        self, ids: npt.NDArray[np.int64], feet: npt.NDArray[np.floating], t: float
    ) -> tuple[list[Visit], list[Visit]]:
        """-> (visits started, visits ended) at this frame."""
        inside = inside_polygon(self.spec.polygon, feet) if len(ids) else np.zeros(0, bool)
        started: list[Visit] = []
        for tid, ins in zip(ids.tolist(), inside.tolist(), strict=True):
            st = self._states.setdefault(tid, _State())
            if not ins:
                st.inside_n, st.seen_outside = 0, True
                continue
            st.seen_outside = False
            if st.inside_n == 0:
                st.first_inside_t = t
            st.inside_n += 1
            st.last_inside_t = t
            if st.visit_start is None and st.inside_n >= self.settings.inertia_frames:
                st.visit_start = st.first_inside_t
                started.append(Visit(self.spec.name, tid, st.visit_start, None))
        left = [
            tid for tid, st in self._states.items()
            if st.seen_outside and t - st.last_inside_t > self.settings.exit_grace_s
        ]
        return started, self.end(left)

    def end(self, ids: Iterable[int]) -> list[Visit]:
        """Close the visits of these tracks (ended, or outside past the grace) and forget them,
        so memory stays bounded by the people in view; one who comes back starts afresh."""
        ended: list[Visit] = []
        for tid in ids:
            st = self._states.pop(tid, None)
            if st is not None and st.visit_start is not None:
                ended.append(Visit(self.spec.name, tid, st.visit_start, st.last_inside_t))
        return ended

    def finish(self) -> list[Visit]:
        return self.end(list(self._states))
