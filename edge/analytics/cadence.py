"""How often the detector runs: about DETECT_HZ times a second of the camera's own time.

Pure: ``FrameRate.observe(t)`` takes each frame's timestamp and ``fps()`` gives the rate the
frames arrive at, from the median interval of the recent ones (a dropped frame or a stall
moves a median little). A live camera's rate is not known until its frames arrive (RTSP
streams misreport it often enough), and a node that falls behind sees its frames further
apart: the cadence follows what the pipeline actually gets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Detections per second of video: the tracker's motion model predicts in between; the line
# focus (edge/pipeline.py) adds frames where crossings are at risk.
DETECT_HZ = 10.0
MIN_INTERVALS = 10  # frames before the rate is trusted; until then every frame is detected


def detect_every_for(fps: float) -> int:
    """k such that every k-th frame gives about DETECT_HZ detections a second (1 to 30)."""
    return max(1, min(30, round(fps / DETECT_HZ)))


@dataclass
class FrameRate:
    window: int = 50  # intervals the median is taken over
    _last_t: float | None = None
    _intervals: deque[float] = field(default_factory=deque)
    _fps: float | None = None

    def observe(self, t: float) -> None:
        if self._last_t is not None and t > self._last_t:
            self._intervals.append(t - self._last_t)
            if len(self._intervals) > self.window:
                self._intervals.popleft()
            if len(self._intervals) >= MIN_INTERVALS:
                self._fps = 1.0 / float(np.median(self._intervals))
        self._last_t = t

    def fps(self) -> float | None:
        return self._fps

    def detect_every(self) -> int:
        """The cadence for the rate seen so far: every frame until it is known."""
        return 1 if self._fps is None else detect_every_for(self._fps)
