"""Counting lines: who crossed, which way, counted once. A plain state machine per track.

Pure: ``LineCounter.update(ids, feet, t, heights, frame_size)`` takes track ids, normalised
foot points and box heights and returns crossing events; ``end(ids)`` settles tracks that the track
lifetime table (edge/tracking/track_life.py) says have ended. It never reads the clock, never
changes its input, and keeps no timeout of its own.

Direction rule (the same as ``schema.LineSpec``): seen from (x1, y1) looking towards (x2, y2),
walking from the left side to the right side is "in" (unless ``in_direction`` flips it).
Image coordinates have y pointing down, so for the line (0.5, 0) -> (0.5, 1), which points down
the image, the left side is image-right: walking image-left -> image-right is "out".

Distances are measured in pixels over the frame's shorter side (``frame_size`` given; without
it, in normalised units), so a band means the same across and along a wide frame, and is the
band of the evaluation's banded truth (../shared/data/eval/README.md, rule 8).

Per track: a side is established only beyond a dead band around the line; a crossing is a
change between established sides that holds ``min_frames_on_side`` observations (or holds
until the track ends), and is reported once it has held ``settle_s``: a crossing the same
track reverses within that time (a box swaying on the line, or an identity that hops between
two people either side of it) cancels with its reversal. The band is the larger of
``hysteresis`` and ``band_bodies`` times the person's box height: a box's bottom edge jitters
in proportion to how large the person is drawn, so a band in fixed image units is too narrow
near the camera and too wide far from it. Identity repair (a person lost behind someone and
found again) is the tracker's job (edge/tracking/tracker.py), not this counter's.

A foot hidden behind someone nearer the camera (``hidden``, from ``hidden_feet``: the foot
point lies inside another person's box) is not where the box's bottom edge says: the legs are
out of sight, and the detector cut the box short or guessed where the feet are. Such an
observation says nothing of which side of a line the person is on when the line runs more
across the frame than down it (its normal is mostly y, the coordinate hidden legs corrupt),
and is skipped there. A person hidden while crossing is counted once seen clear on the far
side, or when the track ends hidden beyond the band on the far side (as a crossing still
being confirmed counts when its track ends). For a line running down the frame the foot's x,
the box's centre, does not depend on the legs, and every observation counts. Chosen on the
whole evaluation suite (docs/accuracy.md, "Hidden feet").

A track first seen inside the band has no side yet. When it leaves the band moving across the
line (``band_start_across`` times as far across as along, since it was first seen), it came
from the far side: the person was found only on reaching the line, and that is a crossing.
When it leaves walking along the line, its first side is simply where it left. Chosen on the
whole evaluation suite (docs/accuracy.md, "What each error is").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.vision.detections import foot_points
from storesense.schema import CountingSettings, LineSpec

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class CrossingEvent:
    line: str
    track_id: int
    direction: Direction
    t: float  # when the foot point passed the line itself (not the band's edge)


@dataclass
class _Side:
    side: int = 0  # -1 left of the band, +1 right of it, 0 not yet established
    candidate: int = 0  # the other side, while it is being confirmed
    candidate_n: int = 0
    line_side: int = 0  # side of the line itself at the last observation (sign of distance)
    passed_t: float = 0.0  # when the foot point last changed sides of the line itself
    pending: CrossingEvent | None = None  # confirmed, waiting settle_s for a reversal
    pending_since: float = 0.0
    start: tuple[float, float] | None = None  # (across, along) when first seen inside the band
    hidden_side: int = 0  # side beyond the band of the hidden feet since the last clear view

    def at_line_side(self, line_side: int, t: float) -> None:
        """The foot is on ``line_side`` of the line itself at ``t``: when it passed is kept."""
        if line_side != self.line_side:
            self.line_side, self.passed_t = line_side, t


def signed_distance(
    line: tuple[float, float, float, float], feet: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distance of each point from the line; negative on its left side (y down)."""
    x1, y1, x2, y2 = line
    dx, dy = x2 - x1, y2 - y1
    cross = dx * (feet[:, 1] - y1) - dy * (feet[:, 0] - x1)
    return cross / float(np.hypot(dx, dy))


def hidden_feet(boxes: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """Whether each box's foot point (bottom centre) lies inside another box of the same frame:
    that person stands behind someone nearer the camera (whose box reaches lower), and their
    feet are out of sight. ``boxes``: (n, 4) x1, y1, x2, y2 in any one unit."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    fx, fy = foot_points(b).T
    inside = ((fx[:, None] > b[None, :, 0]) & (fx[:, None] < b[None, :, 2])
              & (fy[:, None] > b[None, :, 1]) & (fy[:, None] < b[None, :, 3]))
    np.fill_diagonal(inside, False)
    return np.asarray(inside.any(axis=1), bool)


def _unit_scale(frame_size: tuple[int, int]) -> tuple[float, float]:
    """Factors taking normalised x and y to units of the frame's shorter side."""
    w, h = frame_size
    return w / min(w, h), h / min(w, h)


@dataclass
class LineCounter:
    spec: LineSpec
    settings: CountingSettings = field(default_factory=CountingSettings)
    _tracks: dict[int, _Side] = field(default_factory=dict)

    def direction(self, from_side: int) -> Direction:
        left_to_right: Direction = "in" if self.spec.in_direction == "left_to_right" else "out"
        other: Direction = "out" if left_to_right == "in" else "in"
        return left_to_right if from_side < 0 else other

    def bands(self, heights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Half-width of the dead band for people of these (normalised) heights."""
        return np.maximum(self.settings.hysteresis, self.settings.band_bodies * heights)

    def update(
        self,
        ids: npt.NDArray[np.int64],
        feet: npt.NDArray[np.floating],
        t: float,
        heights: npt.NDArray[np.floating] | None = None,
        frame_size: tuple[int, int] | None = None,
        hidden: npt.NDArray[np.bool_] | None = None,
    ) -> list[CrossingEvent]:
        """Observations of one frame: track ids, foot points in normalised coordinates, the
        boxes' heights normalised to the frame's (None: the band is ``hysteresis`` alone), the
        frame's (width, height) in pixels, and which feet are hidden behind someone nearer
        (``hidden_feet``; None: none)."""
        sx, sy = (1.0, 1.0) if frame_size is None else _unit_scale(frame_size)
        x1, y1, x2, y2 = self.spec.points
        pts = np.asarray(feet, np.float64).reshape(-1, 2) * (sx, sy)
        dist = signed_distance((x1 * sx, y1 * sy, x2 * sx, y2 * sy), pts)
        ux, uy = (x2 - x1) * sx, (y2 - y1) * sy
        along = pts @ np.array([ux, uy]) / float(np.hypot(ux, uy))  # position along the line
        hs = np.zeros(len(ids)) if heights is None else np.asarray(heights, np.float64) * sy
        band = self.bands(hs)
        # A hidden foot's y is unsure, its x is not: only a line whose normal is mostly y skips it.
        skip = np.zeros(len(ids), bool)
        if hidden is not None and abs(uy) <= abs(ux):
            skip = np.asarray(hidden, bool)
        events = self._settled(t)
        on_line = self._on_line_side()
        for tid, d, a, b, blind in zip(ids.tolist(), dist.tolist(), along.tolist(),
                                       band.tolist(), skip.tolist(), strict=True):
            line_side = -1 if d < 0 else (1 if d > 0 else on_line)
            obs = line_side if abs(d) > b or b == 0 else 0  # a side only beyond the band
            st = self._tracks.get(tid)
            if blind:
                if st is not None:
                    self._observe_hidden(st, line_side, obs, t)
                continue
            if st is None:
                st = self._tracks[tid] = _Side(start=(d, a) if obs == 0 else None)
            elif st.side == 0 and obs != 0 and st.start is not None:
                st.side = self._start_side(st.start, d, a, obs)
            st.hidden_side = 0  # seen clear: where it was while hidden no longer matters
            st.at_line_side(line_side, t)
            self._observe(tid, st, obs, t)
        return events + self._settled(t)

    @staticmethod
    def _observe_hidden(st: _Side, line_side: int, obs: int, t: float) -> None:
        """A hidden foot: kept are when it passed the line (the best guess of the time) and
        the side it is on, which counts only if the track ends before it is seen clear."""
        st.at_line_side(line_side, t)
        if obs != 0:
            st.hidden_side = obs

    def _start_side(self, start: tuple[float, float], d: float, a: float, obs: int) -> int:
        """The side a track first seen inside the band came from, as it leaves the band on side
        ``obs``: the far side if it moved across the line, else none yet (0)."""
        ratio = self.settings.band_start_across
        moved_across, moved_along = abs(d - start[0]), abs(a - start[1])
        return -obs if ratio > 0 and moved_across > ratio * moved_along else 0

    def _on_line_side(self) -> int:
        """The side of a point exactly on the line. For a vertical or horizontal line, the side
        holding x >= c (or y >= c), as the evaluation data's rule 3 says; else the right."""
        x1, y1, x2, y2 = self.spec.points
        if x1 == x2:
            return -1 if y2 > y1 else 1
        if y1 == y2:
            return 1 if x2 > x1 else -1
        return 1

    def end(self, ids: Iterable[int]) -> list[CrossingEvent]:
        """Tracks that ended: a crossing still being confirmed counts (the person was last seen
        beyond the band, clear or hidden), one waiting to settle is reported, and the track is
        forgotten."""
        events = []
        for tid in ids:
            st = self._tracks.pop(tid, None)
            if st is None:
                continue
            if st.candidate == 0 and st.side != 0 and st.hidden_side == -st.side:
                st.candidate, st.pending_since = st.hidden_side, st.passed_t
            if st.candidate != 0:
                self._confirm(tid, st, st.candidate, st.pending_since)
            if st.pending is not None:
                events.append(st.pending)
        return events

    def _settled(self, t: float) -> list[CrossingEvent]:
        """Crossings that held settle_s without a reversal: reported now."""
        out = []
        for st in self._tracks.values():
            if st.pending is not None and t - st.pending_since >= self.settings.settle_s:
                out.append(st.pending)
                st.pending = None
        return out

    def finish(self) -> list[CrossingEvent]:
        """End of stream: settle every track (a crossing waiting to settle is reported)."""
        return self.end(list(self._tracks))

    def _observe(self, tid: int, st: _Side, obs: int, t: float) -> None:
        if obs == 0:
            return
        if st.side == 0:
            st.side = obs  # first side seen: where the track comes from, not a crossing
            return
        if obs == st.side:
            st.candidate, st.candidate_n = 0, 0
            return
        st.candidate = obs
        st.candidate_n += 1
        if st.candidate_n >= self.settings.min_frames_on_side:
            self._confirm(tid, st, obs, t)

    def _confirm(self, tid: int, st: _Side, to_side: int, t: float) -> None:
        """A crossing to ``to_side`` holds: it waits to settle, or cancels the one waiting
        (which it reverses)."""
        ev = CrossingEvent(self.spec.name, tid, self.direction(st.side), st.passed_t)
        st.side, st.candidate, st.candidate_n = to_side, 0, 0
        if st.pending is not None:
            st.pending = None  # there and back within settle_s: neither counts
        else:
            st.pending, st.pending_since = ev, t
