"""Wall-clock steps on the edge, seen by comparing the wall clock with the monotonic clock.

Between two readings both clocks advance alike (NTP slews the wall clock by at most 0.5 ms
per second); a difference of more than ``threshold_s`` is a step: NTP correcting a clock
that was wrong, an operator, a box without RTC that booted at the wrong time. Frames carry
wall-clock times, so without this a step back kept the open window open until the clock
caught up again (no window published meanwhile; a 1 h step: one window swallowing an hour),
and windows stamped while a clock was ahead reused the message ids of the genuine windows
of that time later, which the gateway then refused as reused ids.

At a step every live camera closes its open window at once (edge.camera_worker), the next
window begins at the step, and after a step back edge.windows keeps the windows of the
repeated stretch off the starts (= message ids) of windows already closed. The steps are
counted (the *clock epoch*, kept in the outbox file) and reported in each camera's
``last_error`` for 10 minutes and in the log.

``StepDetector`` is pure (times are arguments); ``ClockWatch`` reads the clocks, is shared
by the camera threads and persists the epoch through a callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

STEP_THRESHOLD_S = 2.0


@dataclass(frozen=True)
class ClockStep:
    jump_s: float  # the wall clock minus where the monotonic clock says it should be
    before: float  # wall time the old clock would show now (the old timeline's "now")
    after: float  # wall time now, on the new clock
    epoch: int  # the clock epoch from this step on


class StepDetector:
    """Pure: fed (wall, monotonic) readings, says when their offset moved by a step."""

    def __init__(self, threshold_s: float = STEP_THRESHOLD_S) -> None:
        self.threshold_s = threshold_s
        self._offset: float | None = None  # wall - monotonic at the last reading

    def observe(self, wall: float, mono: float) -> float | None:
        """The jump in seconds if the wall clock stepped since the last reading, else None.
        Small drifts (below the threshold) are followed, so they never add up to a step."""
        offset = wall - mono
        last, self._offset = self._offset, offset
        if last is None or abs(offset - last) <= self.threshold_s:
            return None
        return offset - last


class ClockWatch:
    """Thread-safe: every camera thread calls ``check`` per frame; a step is counted once."""

    def __init__(
        self, epoch: int = 0, save_epoch: Callable[[int], None] = lambda n: None, *,
        threshold_s: float = STEP_THRESHOLD_S, wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = epoch
        self.steps: list[ClockStep] = []
        self._detector = StepDetector(threshold_s)
        self._save = save_epoch
        self.wall, self._mono = wall, mono
        self._lock = threading.Lock()

    def check(self) -> int:
        """The clock epoch now (after counting a step that happened since the last call)."""
        with self._lock:
            wall = self.wall()
            jump = self._detector.observe(wall, self._mono())
            if jump is not None:
                self.epoch += 1
                self._save(self.epoch)
                self.steps.append(ClockStep(jump, wall - jump, wall, self.epoch))
                del self.steps[:-10]
            return self.epoch

    @property
    def last_step(self) -> ClockStep | None:
        with self._lock:
            return self.steps[-1] if self.steps else None
