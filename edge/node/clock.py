"""Wall-clock steps on the edge, seen by comparing the wall clock with the monotonic clock.

Between two readings both clocks advance alike (NTP slews the wall clock by at most 0.5 ms
per second); a difference of more than ``threshold_s`` is a step: NTP correcting a clock
that was wrong, an operator, a box without RTC that booted at the wrong time. Frames carry
wall-clock times, so without this a step back kept the open window open until the clock
caught up again (no window published meanwhile; a 1 h step: one window swallowing an hour),
and windows stamped while a clock was ahead reused the message ids of the genuine windows
of that time later, which the gateway then refused as reused ids.

At a step every live camera closes its open window at once (edge.node.camera_worker), the next
window begins at the step, and after a step back edge.analytics.windows keeps the windows of the
repeated stretch off the starts (= message ids) of windows already closed. The steps are
counted (the *clock epoch*, kept in the outbox file) and reported in each camera's
``last_error`` for 10 minutes and in the log.

A clock that is wrong from the start has no step to see. The gateway's confirmations carry
its clock (storesense.acks); a device clock more than ``GATEWAY_TOLERANCE_S`` off it is
logged once and shown in each live camera's ``last_error`` while it lasts. Nothing is
corrected: which clock is wrong is for the operator to find out (the gateway refuses
windows dated in its future, docs/gateway.md).

``StepDetector`` is pure (times are arguments); ``ClockWatch`` reads the clocks, is shared
by the camera threads and persists the epoch through a callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
STEP_THRESHOLD_S = 2.0
# confirmations leave the gateway within a second or so of its commit; a minute is far
# beyond transit and batching, and far below an hour off
GATEWAY_TOLERANCE_S = 120.0


def disagreement(offset_s: float | None, tolerance_s: float = GATEWAY_TOLERANCE_S) -> str | None:
    """Pure: how the device clock (``offset_s`` = device minus gateway) reads, if too far off."""
    if offset_s is None or abs(offset_s) <= tolerance_s:
        return None
    way = "ahead of" if offset_s > 0 else "behind"
    return f"device clock {abs(offset_s):.0f} s {way} the gateway's"


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
        self.gateway_offset_s: float | None = None  # device minus gateway, last confirmation

    def gateway_time(self, gateway_now: float) -> None:
        """A confirmation said the gateway's clock read ``gateway_now`` (paho's thread)."""
        offset = self.wall() - gateway_now
        before, self.gateway_offset_s = disagreement(self.gateway_offset_s), offset
        now = disagreement(offset)
        if (now is None) != (before is None):
            if now:
                log.warning("%s", now)
            else:
                log.warning("device clock agrees with the gateway's again")

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
