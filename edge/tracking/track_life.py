"""One owner of a camera's track lifetimes: which tracks started, and which ended, this frame.

Lines, zones, paths, transitions and demographics all ask this table when a track has ended,
instead of each keeping its own timeout: a person hidden for a moment and found again by the
tracker (re-identification keeps their id) is the same track to every analytic, and a track
that ended is settled by all of them at the same frame.

The tracker knows best when it has given up on a track and says so (``ended``); the timeout
here covers callers without a tracker (ground-truth tracks in evaluation, tests) and ids the
tracker never reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class TrackLife:
    timeout_s: float = 2.0  # unseen this long, and not ended by the tracker: ended here
    _last_seen: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    def update(
        self, ids: Iterable[int], t: float, ended: Iterable[int] = ()
    ) -> tuple[list[int], list[int]]:
        """Tracks seen at ``t`` and tracks the tracker ended -> (started, ended), in order."""
        started = []
        for tid in ids:
            if tid not in self._last_seen:
                started.append(tid)
            self._last_seen[tid] = t
        gone = [tid for tid in ended if tid in self._last_seen]
        gone += [
            tid for tid, last in self._last_seen.items()
            if t - last > self.timeout_s and tid not in gone
        ]
        for tid in gone:
            del self._last_seen[tid]
        return started, gone

    def finish(self) -> list[int]:
        """End of stream: every live track ends."""
        gone = list(self._last_seen)
        self._last_seen.clear()
        return gone

    def __len__(self) -> int:
        return len(self._last_seen)
