"""Groups at the entrance: people who cross in together count as one group.

Footfall vendors state conversion per group (a couple or a family buys once), so each 'in'
crossing either joins a group whose member crossed moments before, or starts a new one. The
rule, with its constants chosen from how people walk, not tuned on a sequence:

- together in time: the two crossed within ``GROUP_GAP_S`` (2 s: people side by side cross
  within a second of each other; one a step or two behind, within two);
- close: their feet were within ``GROUP_DIST_BODIES`` body heights (the taller of the two)
  when the later one crossed; a body height is the local scale of the image, so the rule
  reads the same near and far from the camera (1.5: an arm's length apart or one behind the
  other, not two strangers a shop's width apart);
- moving together: they were that close ``TOGETHER_S`` (1 s) before as well, so two strangers
  who happen to meet at the door from different directions are not a group.

Chains count: a third person who crosses with the second joins the group. A crossing joins
at most one group (the closest member's). Groups are counted online, when their first member
crosses, so a window's groups never exceed its 'in' crossings.

Pure: ``observe(ids, feet, heights, t)`` each frame keeps a short history per track,
``on_in(track_id, t)`` for each 'in' crossing returns True when it starts a new group.
Memory: a few seconds of foot points of the tracks seen in the last ``HISTORY_S``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

GROUP_GAP_S = 2.0
GROUP_DIST_BODIES = 1.5
TOGETHER_S = 1.0
# history kept per track: enough to look back TOGETHER_S from a crossing reported settle_s
# (<= 10 s by the schema) after it happened
HISTORY_S = 12.0


@dataclass
class _Crossing:
    track_id: int
    t: float
    group: int


@dataclass
class GroupCounter:
    gap_s: float = GROUP_GAP_S
    dist_bodies: float = GROUP_DIST_BODIES
    together_s: float = TOGETHER_S
    frame_size: tuple[int, int] | None = None  # (w, h): distances in pixels when known
    _history: dict[int, deque[tuple[float, float, float, float]]] = field(default_factory=dict)
    _recent: list[_Crossing] = field(default_factory=list)
    _next_group: int = 0
    # (track, crossing time, group) of every 'in', for evaluation runs that explain their
    # groups; off in the pipeline, where it would grow without bound
    log: list[tuple[int, float, int]] | None = None

    def observe(
        self, ids: npt.NDArray[np.int64], feet: npt.NDArray[np.floating],
        heights: npt.NDArray[np.floating] | None, t: float,
    ) -> None:
        hs = np.zeros(len(ids)) if heights is None else np.asarray(heights, np.float64)
        for tid, (x, y), h in zip(ids.tolist(), np.asarray(feet).tolist(), hs.tolist(),
                                  strict=True):
            hist = self._history.setdefault(tid, deque())
            hist.append((t, x, y, h))
            while hist and t - hist[0][0] > HISTORY_S:
                hist.popleft()
        # Tracks unseen for HISTORY_S go: an ended track's history outlives it that long,
        # for the crossings of its companions reported after it ended.
        stale = [k for k, v in self._history.items() if t - v[-1][0] > HISTORY_S]
        for k in stale:
            del self._history[k]

    def on_in(self, track_id: int, t: float) -> bool:
        """An 'in' crossing at ``t`` (when the foot passed the line): True if it starts a group."""
        self._recent = [c for c in self._recent if abs(t - c.t) <= HISTORY_S]
        best: tuple[float, int] | None = None
        for c in self._recent:
            if c.track_id == track_id or abs(t - c.t) > self.gap_s:
                continue
            d = self._apart(track_id, c.track_id, t)
            if d is None or d > self.dist_bodies:
                continue
            before = self._apart(track_id, c.track_id, t - self.together_s)
            if before is None or before > self.dist_bodies:
                continue
            if best is None or d < best[0]:
                best = (d, c.group)
        group = best[1] if best is not None else self._next_group + 1
        self._next_group = max(self._next_group, group)
        self._recent.append(_Crossing(track_id, t, group))
        if self.log is not None:
            self.log.append((track_id, t, group))
        return best is None

    def _at(self, tid: int, t: float) -> tuple[float, float, float] | None:
        """The track's (x, y, height) at the observation nearest ``t`` (within half a second)."""
        hist = self._history.get(tid)
        if not hist:
            return None
        ts, x, y, h = min(hist, key=lambda s: abs(s[0] - t))
        return (x, y, h) if abs(ts - t) <= 0.5 else None

    def _apart(self, a: int, b: int, t: float) -> float | None:
        """Distance of two tracks' feet at ``t`` in body heights (the taller's); None if
        either was not seen then."""
        pa, pb = self._at(a, t), self._at(b, t)
        if pa is None or pb is None:
            return None
        w, h = self.frame_size or (1, 1)
        body = max(pa[2], pb[2]) * h
        if body <= 0:
            return None
        return math.hypot((pa[0] - pb[0]) * w, (pa[1] - pb[1]) * h) / body

    def rename(self, old: int, new: int) -> None:
        if old in self._history:
            self._history[new] = self._history.pop(old)
        for c in self._recent:
            if c.track_id == old:
                c.track_id = new
