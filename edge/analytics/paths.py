"""Zone-to-zone transitions and short anonymous trajectories.

Pure and bounded: a track's path is thinned as it grows, and what leaves this module has no
id and no time of day (only normalised points and a duration).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from storesense.schema import Trajectory

MAX_POINTS = 32
_KEEP = 128  # points held per live track before thinning by half


@dataclass
class _Path:
    points: list[tuple[float, float]] = field(default_factory=list)
    start: float = 0.0
    last: float = 0.0


@dataclass
class PathRecorder:
    """Collects each track's foot points; emits a Trajectory when the track ends (``end``, told
    by the camera's track lifetime table)."""

    min_step: float = 0.01  # normalised distance below which a point adds nothing
    _paths: dict[int, _Path] = field(default_factory=dict)

    def update(self, ids: np.ndarray, feet: np.ndarray, t: float) -> None:
        for tid, (x, y) in zip(ids.tolist(), np.asarray(feet, float).tolist(), strict=True):
            p = self._paths.get(tid)
            if p is None:
                p = self._paths[tid] = _Path([], t, t)
            p.last = t
            pt = (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
            if (
                not p.points
                or np.hypot(pt[0] - p.points[-1][0], pt[1] - p.points[-1][1]) >= self.min_step
            ):
                p.points.append(pt)
                if len(p.points) > _KEEP:
                    p.points = p.points[::2]

    def end(self, ids: Iterable[int]) -> list[Trajectory]:
        gone = [p for tid in ids if (p := self._paths.pop(tid, None)) is not None]
        return [tr for p in gone if (tr := self._emit(p))]

    def finish(self) -> list[Trajectory]:
        return self.end(list(self._paths))

    @staticmethod
    def _emit(p: _Path) -> Trajectory | None:
        if len(p.points) < 2:
            return None
        idx = np.unique(np.linspace(0, len(p.points) - 1, MAX_POINTS).round().astype(int))
        return Trajectory(points=[p.points[i] for i in idx], duration_s=max(0.0, p.last - p.start))


@dataclass
class TransitionCounter:
    """Counts moves from one zone visit to the next zone visit of the same track."""

    memory_s: float = 600.0  # forget a track's last zone after this long
    _last_zone: dict[int, tuple[str, float]] = field(default_factory=dict)

    def on_visit_start(self, track_id: int, zone: str, t: float) -> tuple[str, str] | None:
        prev = self._last_zone.get(track_id)
        self._last_zone[track_id] = (zone, t)
        if prev is not None and prev[0] != zone:
            return prev[0], zone
        return None

    def on_visit_end(self, track_id: int, zone: str, t: float) -> None:
        self._last_zone[track_id] = (zone, t)

    def expire(self, t: float) -> None:
        stale = [k for k, (_, t0) in self._last_zone.items() if t - t0 > self.memory_s]
        for k in stale:
            del self._last_zone[k]
