"""Counting lines: who crossed, which way, counted once.

Pure: ``LineCounter.update(ids, feet, t)`` takes track ids and normalised foot points and
returns crossing events; it never reads the clock and never changes its input.

Direction rule (the same as ``schema.LineSpec``): seen from (x1, y1) looking towards (x2, y2),
walking from the left side to the right side is "in" (unless ``in_direction`` flips it).
Image coordinates have y pointing down, so for the line (0.5, 0) -> (0.5, 1), which points down
the image, the left side is image-right: walking image-left -> image-right is "out".

Rules against double counting:
- hysteresis: a foot point within ``hysteresis`` of the line keeps the side it had;
- ``min_frames_on_side`` consecutive observations on the new side before a crossing counts;
- late count: a track that ends while seen on the new side for fewer frames still counts;
- id switch at the line: a new track that appears where a track was just lost inherits that
  track's side, so the person's one crossing is counted once, not zero or two times. "Where"
  is the lost track's foot point walked on at its last velocity; the radius is at least a
  quarter of the person's height (given box heights: a person drawn large near the camera
  strays further in image units than one far away) and grows with the time unseen, since a
  hidden person does not walk a perfectly straight line;
- parting after the line: a new track that appears beside a track that crossed to its side
  less than a second ago came across with it (two people seen as one box until they part).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from storesense.schema import CountingSettings, LineSpec

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class CrossingEvent:
    line: str
    track_id: int
    direction: Direction
    t: float  # time of the first observation on the new side


@dataclass
class _Side:
    side: int  # -1 left of the line, +1 right, 0 not yet known
    last_foot: tuple[float, float]
    last_t: float
    candidate: int = 0
    candidate_n: int = 0
    candidate_t: float = 0.0
    seen: bool = True
    velocity: tuple[float, float] = (0.0, 0.0)  # normalised units per second, smoothed
    crossed_t: float = -np.inf  # when this track's last crossing was counted
    height: float = 0.0  # box height, normalised to the frame's (0 when not given)


def signed_distance(
    line: tuple[float, float, float, float], feet: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distance of each point from the line; negative on its left side (y down)."""
    x1, y1, x2, y2 = line
    dx, dy = x2 - x1, y2 - y1
    cross = dx * (feet[:, 1] - y1) - dy * (feet[:, 0] - x1)
    return cross / float(np.hypot(dx, dy))


@dataclass
class LineCounter:
    spec: LineSpec
    settings: CountingSettings = field(default_factory=CountingSettings)
    track_timeout_s: float = 2.0  # a track unseen this long has ended
    handover_radius: float = 0.05  # normalised distance for an id switch handover
    # ... or this many times the lost person's height, if larger: about a shoulder width.
    handover_bodies: float = 0.25
    # How far (normalised, per second hidden) a hidden person may stray from walking on in a
    # straight line: the handover radius grows by this over the gap, up to the track timeout.
    handover_growth: float = 0.03
    split_window_s: float = 1.0  # see _companion
    # Two people do not stand on one spot: a new track whose foot point is this close to a
    # track in view is a second box on the same person (they survive NMS), not a companion.
    same_spot: float = 0.01
    _tracks: dict[int, _Side] = field(default_factory=dict)

    def direction(self, from_side: int) -> Direction:
        left_to_right: Direction = "in" if self.spec.in_direction == "left_to_right" else "out"
        other: Direction = "out" if left_to_right == "in" else "in"
        return left_to_right if from_side < 0 else other

    def update(
        self,
        ids: npt.NDArray[np.int64],
        feet: npt.NDArray[np.floating],
        t: float,
        heights: npt.NDArray[np.floating] | None = None,
    ) -> list[CrossingEvent]:
        """Observations of one frame: track ids and foot points in normalised coordinates, and
        optionally the boxes' heights normalised to the frame's (see ``handover_bodies``)."""
        dist = signed_distance(self.spec.points, np.asarray(feet, np.float64))
        hs = np.zeros(len(ids)) if heights is None else np.asarray(heights, np.float64)
        present = {int(i) for i in ids}
        for st in self._tracks.values():
            st.seen = False
        events: list[CrossingEvent] = []
        for tid, d, foot, h in zip(
            ids.tolist(), dist.tolist(), np.asarray(feet).tolist(), hs.tolist(), strict=True
        ):
            obs = 0 if abs(d) <= self.settings.hysteresis else (-1 if d < 0 else 1)
            known = self._tracks.get(tid)
            st = (
                known
                if known is not None
                else self._new_track(tid, (foot[0], foot[1]), obs, t, present)
            )
            self._move(st, (foot[0], foot[1]), t)
            st.height = h
            ev = self._observe(tid, st, obs, t)
            if ev:
                events.append(ev)
        events.extend(self._expire(t))
        return events

    @staticmethod
    def _move(st: _Side, foot: tuple[float, float], t: float) -> None:
        dt = t - st.last_t
        if 0 < dt <= 1.0:
            vx = (foot[0] - st.last_foot[0]) / dt
            vy = (foot[1] - st.last_foot[1]) / dt
            st.velocity = (0.7 * st.velocity[0] + 0.3 * vx, 0.7 * st.velocity[1] + 0.3 * vy)
        st.last_foot, st.last_t, st.seen = foot, t, True

    def finish(self) -> list[CrossingEvent]:
        """End of stream: settle every pending crossing."""
        events = [e for tid, st in self._tracks.items() if (e := self._late(tid, st))]
        self._tracks.clear()
        return events

    def _new_track(
        self, tid: int, foot: tuple[float, float], obs: int, t: float, present: set[int]
    ) -> _Side:
        st = _Side(0, foot, t)
        donor = self._handover_donor(foot, t, present)
        if donor is None and self._companion(foot, obs, t, present) is not None:
            st.side = -obs  # it came from where its companion came from
        elif donor is not None:
            old = self._tracks.pop(donor)
            st.side = old.side if old.side else old.candidate
            if old.candidate and old.candidate != old.side:
                st.candidate, st.candidate_n, st.candidate_t = (
                    old.candidate,
                    old.candidate_n,
                    old.candidate_t,
                )
        self._tracks[tid] = st
        return st

    def _handover_donor(self, foot: tuple[float, float], t: float, present: set[int]) -> int | None:
        """The lost track nearest to the new one, measured from where it would be had it walked
        on, within the larger of handover_radius and handover_bodies times its height, grown
        by handover_growth per second it has been unseen."""
        best, best_d = None, 1.0
        for tid, st in self._tracks.items():
            if tid in present or (st.side == 0 and st.candidate == 0):
                continue
            gap = min(t - st.last_t, self.track_timeout_s)
            x = st.last_foot[0] + st.velocity[0] * gap
            y = st.last_foot[1] + st.velocity[1] * gap
            d = float(np.hypot(x - foot[0], y - foot[1]))
            radius = max(self.handover_radius, self.handover_bodies * st.height)
            d /= radius + self.handover_growth * gap
            if d < best_d:
                best, best_d = tid, d
        return best

    def _companion(
        self, foot: tuple[float, float], obs: int, t: float, present: set[int]
    ) -> _Side | None:
        """A track in view, where the new one appears, that crossed to the new one's side less
        than split_window_s ago. Two people who cross side by side are often one box until
        they part just beyond the line; the one that appears then crossed too."""
        if obs == 0:
            return None
        for tid in present:
            st = self._tracks.get(tid)
            if st is None or st.side != obs or t - st.crossed_t > self.split_window_s:
                continue
            d = np.hypot(st.last_foot[0] - foot[0], st.last_foot[1] - foot[1])
            if self.same_spot < d <= self.handover_radius:
                return st
        return None

    def _observe(self, tid: int, st: _Side, obs: int, t: float) -> CrossingEvent | None:
        if obs == 0:
            return None
        if st.side == 0 and st.candidate == 0:
            st.side = obs  # first side seen: where the track comes from, not a crossing
            return None
        if obs == st.side:
            st.candidate, st.candidate_n = 0, 0
            return None
        if obs != st.candidate:
            st.candidate, st.candidate_n, st.candidate_t = obs, 0, t
        st.candidate_n += 1
        if st.candidate_n >= self.settings.min_frames_on_side:
            return self._commit(tid, st)
        return None

    def _commit(self, tid: int, st: _Side) -> CrossingEvent | None:
        ev = None
        if st.side != 0:
            ev = CrossingEvent(self.spec.name, tid, self.direction(st.side), st.candidate_t)
            st.crossed_t = st.last_t
        st.side, st.candidate, st.candidate_n = st.candidate, 0, 0
        return ev

    def _late(self, tid: int, st: _Side) -> CrossingEvent | None:
        if st.candidate != 0 and st.candidate != st.side:
            return self._commit(tid, st)
        return None

    def _expire(self, t: float) -> list[CrossingEvent]:
        gone = [tid for tid, st in self._tracks.items() if t - st.last_t > self.track_timeout_s]
        events = [e for tid in gone if (e := self._late(tid, self._tracks[tid]))]
        for tid in gone:
            del self._tracks[tid]
        return events
