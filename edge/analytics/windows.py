"""Window aggregates: everything a camera saw in one window, as a schema.WindowAggregate.

Windows are aligned to multiples of ``window_s`` on the timestamp axis (12:00:00, 12:01:00,
...), so every camera's windows line up for the rollups. Two windows are partial: the first one
after a start begins at its first frame (whole second), and one closed early (shutdown) ends at
its last frame. That keeps message ids unique across a restart in the middle of a window: the
window flushed at shutdown and the one opened after the restart have different starts, so the
gateway, which keeps the first copy of an id, stores both halves.
A wall-clock step (edge.node.clock) closes the open window like a shutdown, and the next window
again begins at its first frame. After a step back, frames are dated before windows already
closed. The message id is the window start (schema.message_id), so the windows of that
stretch must not start where an earlier window did: until the frames are past the end of
every window closed so far, windows are shifted off the aligned grid (they keep the phase of
their first frame's second, or w - 1 s when that is 0), then the grid resumes with a partial
window. Windows stay contiguous and non-overlapping within each clock run.
Pure: fed with timestamps and analytics outputs, never reads the clock.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from edge.analytics.counting import CrossingEvent
from edge.analytics.queues import QueueVisit
from edge.analytics.zones import Visit
from storesense.schema import (
    DWELL_BIN_EDGES_S,
    Demographics,
    Heatmap,
    LineCount,
    OccupancyStats,
    QueueStats,
    StaffCounts,
    Trajectory,
    Transition,
    WindowAggregate,
    ZoneStats,
    message_id,
)

MAX_PATHS = 64


def window_start(t: float, window_s: int) -> float:
    return math.floor(t / window_s) * window_s


def occupancy_stats(samples: list[int]) -> OccupancyStats:
    if not samples:
        return OccupancyStats(avg=0.0, max=0)
    return OccupancyStats(avg=round(float(np.mean(samples)), 4), max=int(max(samples)))


def dwell_histogram(dwells: list[float]) -> list[int]:
    edges = np.asarray(DWELL_BIN_EDGES_S, float)
    idx = np.clip(np.searchsorted(edges, np.asarray(dwells, float), side="right") - 1, 0, None)
    counts: list[int] = np.bincount(idx, minlength=len(edges)).astype(int).tolist()
    return counts


@dataclass
class _ZoneAcc:
    entries: int = 0
    dwells: list[float] = field(default_factory=list)
    occupancy: list[int] = field(default_factory=list)


@dataclass
class _QueueAcc:
    length: list[int] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # of served visits
    abandoned: int = 0
    lost: int = 0


@dataclass
class _Acc:
    start: float
    end: float  # nominal end: the next multiple of window_s
    frames: int = 0
    occupancy: list[int] = field(default_factory=list)
    lines: dict[str, list[int]] = field(default_factory=dict)
    zones: dict[str, _ZoneAcc] = field(default_factory=dict)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    ages: Counter[str] = field(default_factory=Counter)
    genders: Counter[str] = field(default_factory=Counter)
    paths: list[Trajectory] = field(default_factory=list)
    retail: bool = False  # whether the caller computes staff, groups and unique visitors
    staff: list[int] = field(default_factory=lambda: [0, 0, 0])  # in, out, tracks marked
    groups: int = 0
    unique: int = 0
    queues: dict[str, _QueueAcc] = field(default_factory=dict)


@dataclass
class WindowAccumulator:
    store_id: str
    camera_id: str
    window_s: int
    stop_threshold_s: float = 5.0
    _acc: _Acc | None = None
    _opened_before: bool = False
    _high: float = -math.inf  # the latest end of a window closed so far
    _shift: float | None = None  # seconds off the grid while behind _high (clock went back)

    @property
    def is_open(self) -> bool:
        return self._acc is not None

    def due(self, t: float) -> bool:
        """Whether a frame at ``t`` belongs past the open window (so it must close first)."""
        return self._acc is not None and t >= self._acc.end

    def roll(self, t: float, heatmap: np.ndarray | None = None) -> list[WindowAggregate]:
        """Call before adding a frame at ``t``: closes the window ``t`` is past, if any."""
        return self.close(heatmap) if self.due(t) else []

    def close(
        self, heatmap: np.ndarray | None = None, early_at: float | None = None
    ) -> list[WindowAggregate]:
        """Close the open window; ``early_at`` (shutdown) ends it there instead of its end."""
        acc, self._acc = self._acc, None
        if early_at is not None:
            # what comes next (after a clock step) is a new run: its first window begins at
            # its first frame, so it cannot start at (and share the id of) this one's start
            self._opened_before = False
        if acc is None or acc.frames == 0:
            return []
        if early_at is not None:
            acc.end = min(acc.end, max(float(math.ceil(early_at)), acc.start + 1.0))
        self._high = max(self._high, acc.end)
        return [self._build(acc, heatmap)]

    def current(self, t: float) -> _Acc:
        if self._acc is None:
            self._acc = self._open(t)
        return self._acc

    def _open(self, t: float) -> _Acc:
        w = self.window_s
        if t < self._high:  # dated before a window already closed: the clock went back
            if self._shift is None:
                # the phase of this frame's second; off the grid by w - 1 s if it is on it,
                # so the window still starts (1-2 s) before its first frame
                self._shift = float(math.floor(t) % w) or float(max(1, w - 1))
            start = window_start(t - self._shift, w) + self._shift
            return _Acc(start=start, end=start + w)
        if self._shift is not None:  # past every earlier window: back to the grid
            self._shift, self._opened_before = None, False
        aligned = window_start(t, w)
        start = aligned if self._opened_before else float(math.floor(t))
        self._opened_before = True
        return _Acc(start=start, end=aligned + w)

    def add_frame(self, t: float, occupancy: int, zone_occupancy: dict[str, int],
                  queue_lengths: dict[str, int] | None = None) -> None:
        acc = self.current(t)
        acc.frames += 1
        acc.occupancy.append(occupancy)
        for name, n in zone_occupancy.items():
            acc.zones.setdefault(name, _ZoneAcc()).occupancy.append(n)
        for name, n in (queue_lengths or {}).items():
            acc.queues.setdefault(name, _QueueAcc()).length.append(n)

    def add_retail(self, t: float, staff_crossings: list[CrossingEvent], new_staff: int,
                   groups: int, unique: int) -> None:
        """Staff crossings of the visitor lines, tracks newly marked staff, groups started
        and unique visitors among this frame's 'in' crossings."""
        acc = self.current(t)
        acc.retail = True
        for e in staff_crossings:
            acc.staff[0 if e.direction == "in" else 1] += 1
        acc.staff[2] += new_staff
        acc.groups += groups
        acc.unique += unique

    def add_queue_visits(self, t: float, visits: list[QueueVisit]) -> None:
        acc = self.current(t)
        for v in visits:
            q = acc.queues.setdefault(v.zone, _QueueAcc())
            if v.outcome == "served":
                q.waits.append(v.wait_s)
            elif v.outcome == "abandoned":
                q.abandoned += 1
            elif v.outcome == "lost":
                q.lost += 1

    def add_crossings(self, t: float, events: list[CrossingEvent], lines: list[str]) -> None:
        acc = self.current(t)
        for name in lines:
            acc.lines.setdefault(name, [0, 0])
        for e in events:
            acc.lines.setdefault(e.line, [0, 0])[0 if e.direction == "in" else 1] += 1

    def add_visits(self, t: float, started: list[Visit], ended: list[Visit]) -> None:
        acc = self.current(t)
        for v in started:
            acc.zones.setdefault(v.zone, _ZoneAcc()).entries += 1
        for v in ended:
            acc.zones.setdefault(v.zone, _ZoneAcc()).dwells.append(v.dwell_s)

    def add_transitions(self, t: float, moves: list[tuple[str, str]]) -> None:
        self.current(t).transitions.update(moves)

    def add_paths(self, t: float, paths: list[Trajectory]) -> None:
        acc = self.current(t)
        acc.paths.extend(paths[: max(0, MAX_PATHS - len(acc.paths))])

    def add_demographics(self, t: float, people: list[tuple[str, str]]) -> None:
        acc = self.current(t)
        for band, gender in people:
            acc.ages[band] += 1
            acc.genders[gender] += 1

    def _build(self, acc: _Acc, heatmap: np.ndarray | None) -> WindowAggregate:
        start = datetime.fromtimestamp(acc.start, UTC)
        end = datetime.fromtimestamp(acc.end, UTC)
        hm = None
        if heatmap is not None:
            rows, cols = heatmap.shape
            hm = Heatmap(cols=cols, rows=rows, cells=np.round(heatmap, 3).ravel().tolist())
        return WindowAggregate(
            message_id=message_id(self.store_id, self.camera_id, start),
            store_id=self.store_id,
            camera_id=self.camera_id,
            window_start=start,
            window_end=end,
            frames=acc.frames,
            lines=[LineCount(line=k, in_count=v[0], out_count=v[1]) for k, v in acc.lines.items()],
            occupancy=occupancy_stats(acc.occupancy),
            zones=[self._zone(name, z) for name, z in acc.zones.items()],
            transitions=[
                Transition(from_zone=a, to_zone=b, count=n)
                for (a, b), n in sorted(acc.transitions.items())
            ],
            heatmap=hm,
            demographics=Demographics(age_bands=dict(acc.ages), genders=dict(acc.genders)),
            paths=acc.paths,
            # None where the caller did not compute them (the gateway then falls back)
            staff=StaffCounts(in_count=acc.staff[0], out_count=acc.staff[1],
                              tracks=acc.staff[2]) if acc.retail else None,
            groups=acc.groups if acc.retail else None,
            unique_visitors=acc.unique if acc.retail else None,
            queues=[
                QueueStats(zone=name, length=occupancy_stats(q.length), served=len(q.waits),
                           abandoned=q.abandoned, lost=q.lost,
                           wait_histogram=dwell_histogram(q.waits))
                for name, q in acc.queues.items()
            ],
        )

    def _zone(self, name: str, z: _ZoneAcc) -> ZoneStats:
        d = np.asarray(z.dwells, float)

        def pct(q: float) -> float:
            return float(np.percentile(d, q)) if d.size else 0.0

        return ZoneStats(
            zone=name,
            entries=z.entries,
            visits=int(d.size),
            stops=int((d >= self.stop_threshold_s).sum()),
            dwell_total_s=round(float(d.sum()), 3),
            dwell_mean_s=round(float(d.mean()), 3) if d.size else 0.0,
            dwell_p50_s=round(pct(50), 3),
            dwell_p90_s=round(pct(90), 3),
            dwell_histogram=dwell_histogram(z.dwells),
            occupancy=occupancy_stats(z.occupancy),
        )
