"""Staff exclusion: which tracks are the store's own people, decided from where they go.

An operator marks staff-only zones (behind the till) and staff lines (the stock room door) in
the camera's config (``ZoneSpec.staff_only``, ``LineSpec.staff``). A track whose feet stay in a
staff-only zone for ``STAFF_ZONE_MIN_S`` (and at least the zone inertia's observations), or
that crosses a staff line (a settled crossing of edge/analytics/counting.py), is staff from
then on for the rest of its life, and the pipeline leaves it out of visitors, dwell,
demographics, groups and passes; its crossings of the visitor lines are counted on their own.

What it cannot do: a crossing already published in a closed window before the track went
behind the till stays a visitor (windows are not rewritten). A staff member's track that ends
(out of view) and starts again is a new track, and a stranger again until it uses a staff
zone or line: this is a per-track rule, not recognition of people.

Pure: ``update(ids, feet, t, staff_crossings)`` returns the tracks newly marked; ``end(ids)``
forgets ended tracks; ``rename(old, new)`` carries the mark when identity repair renames a
track.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.analytics.zones import inside_polygon
from storesense.schema import ZoneSpec

# A foot point inside a staff-only zone this long is a person working there, not a customer
# whose box bottom strays over the counter for a frame or two (boxes jitter by ~5 % of a
# body height, docs/accuracy.md). One second at ~10 detections a second is ten observations.
STAFF_ZONE_MIN_S = 1.0


@dataclass
class StaffMarker:
    zones: list[ZoneSpec]
    min_frames: int = 3  # the zone inertia: observations inside before it counts at all
    min_s: float = STAFF_ZONE_MIN_S
    _staff: set[int] = field(default_factory=set)
    _inside_since: dict[int, tuple[float, int]] = field(default_factory=dict)
    marked_total: int = 0

    def is_staff(self, track_id: int) -> bool:
        return track_id in self._staff

    def staff_mask(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return np.array([i in self._staff for i in ids.tolist()], bool)

    def update(
        self, ids: npt.NDArray[np.int64], feet: npt.NDArray[np.floating], t: float,
        staff_crossings: Iterable[int] = (),
    ) -> list[int]:
        """One frame's tracks and the tracks that crossed a staff line -> tracks newly staff."""
        new = [tid for tid in staff_crossings if self._mark(tid)]
        if not self.zones or len(ids) == 0:
            return new
        inside = np.zeros(len(ids), bool)
        for z in self.zones:
            inside |= inside_polygon(z.polygon, feet)
        for tid, ins in zip(ids.tolist(), inside.tolist(), strict=True):
            if tid in self._staff:
                continue
            if not ins:
                self._inside_since.pop(tid, None)
                continue
            since, n = self._inside_since.get(tid, (t, 0))
            self._inside_since[tid] = (since, n + 1)
            if n + 1 >= self.min_frames and t - since >= self.min_s and self._mark(tid):
                new.append(tid)
        return new

    def _mark(self, tid: int) -> bool:
        if tid in self._staff:
            return False
        self._staff.add(tid)
        self._inside_since.pop(tid, None)
        self.marked_total += 1
        return True

    def rename(self, old: int, new: int) -> None:
        """Identity repair continued track ``old`` as ``new``: one person, one mark."""
        if old in self._staff:
            self._staff.discard(old)
            self._staff.add(new)

    def end(self, ids: Iterable[int]) -> None:
        for tid in ids:
            self._staff.discard(tid)
            self._inside_since.pop(tid, None)
