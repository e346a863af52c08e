"""The detector's zoom, chosen from the heights of the people it finds.

Pure: ``ZoomPolicy.observe(heights)`` takes the heights of one detection frame's confident
boxes, in pixels of the trained-scale canvas (zoom 1), and returns the zoom for the next
detection. See ``storesense.schema.DetectorZoom`` for the knobs and why.

The heights are those at zoom 1 whatever the zoom in use, so zooming in does not by itself
make people look taller and zoom out again. A zoomed-in detector finds more of the small
people than a zoom-1 one would, so their median is lower than zoom 1 would see: that is the
hysteresis that keeps the zoom from flapping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from storesense.schema import DetectorZoom

ZOOM_STEP = 0.25  # zooms are quantised: each one is a tensor shape onnxruntime plans once
MIN_BOXES = 20  # fewer confident boxes than this in the window say too little to act on
WINDOW_FRAMES = 30  # detection frames whose boxes are pooled (3 s at 10 detections a second)
CONFIDENT = 0.5  # boxes at or above this score are counted (low ones are often fragments)


@dataclass
class ZoomPolicy:
    settings: DetectorZoom = field(default_factory=DetectorZoom)
    window_frames: int = WINDOW_FRAMES
    min_boxes: int = MIN_BOXES
    zoom: float = 1.0
    median_px: float | None = None  # of the window the last decision was judged on
    _window: deque[npt.NDArray[np.float64]] = field(default_factory=deque)
    _since_change: int = 0

    def __post_init__(self) -> None:
        if self.window_frames < 1 or self.min_boxes < 1:
            raise ValueError(
                f"window_frames and min_boxes must be >= 1, got {self.window_frames}, "
                f"{self.min_boxes}"
            )
        self.zoom = self.settings.zoom

    def observe(self, heights: npt.NDArray[np.floating]) -> float:
        """One detection frame's confident box heights at zoom 1 -> the zoom to use next."""
        if self.settings.mode == "fixed":
            return self.zoom
        self._window.append(np.asarray(heights, np.float64).ravel())
        if len(self._window) > self.window_frames:
            self._window.popleft()
        self._since_change += 1
        pooled = np.concatenate(self._window)
        # A change is judged on a window of frames seen at the zoom in use.
        if pooled.size < self.min_boxes or self._since_change < self.window_frames:
            return self.zoom
        self.median_px = float(np.median(pooled))
        new = self.choose(self.median_px)
        if new != self.zoom:
            self.zoom, self._since_change = new, 0
        return self.zoom

    def choose(self, median_px: float) -> float:
        """The zoom for people of this median height at zoom 1, given the zoom in use."""
        s = self.settings
        if median_px >= s.target_px:
            return 1.0
        if self.zoom == 1.0 and median_px >= s.small_px:
            return 1.0
        want = min(s.max_zoom, s.target_px / max(median_px, 1.0))
        return max(1.0, min(s.max_zoom, math.ceil(want / ZOOM_STEP) * ZOOM_STEP))
