"""The detector's zoom, chosen from the heights of the people it finds and from what a closer
look finds that zoom 1 misses.

Pure: ``ZoomPolicy.observe(heights)`` takes the heights of one detection frame's confident
boxes, in pixels of the trained-scale canvas (zoom 1), and returns the zoom for the next
detection. See ``storesense.schema.DetectorZoom`` for the knobs and why.

Heights alone cannot see the people the detector misses: where the small people are missed,
the median of those found stays tall (issue 14's held-out camera: 38 px found at zoom 1, above
``small_px``, with zoom 1 finding 0.34 of the people and zoom 2 0.61). So on a few sampled
frames the detector also runs at ``max_zoom`` (``probe_due``, ``observe_probe``), and where
zoom 1 finds fewer than ``edge.vision.profile``'s ``min_recall`` of the people that closer
look finds confidently, ``max_zoom`` becomes the floor until a later probe says otherwise.
It is the camera profile's rule (``ProfilePolicy``: the same probe schedule, pooling and
thresholds), with the closer look in the crowd detector's place.

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

from edge.vision.profile import ProfilePolicy
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
    zoom: float = 1.0  # in use: the larger of the heights' choice and the probes' floor
    median_px: float | None = None  # of the window the last decision was judged on
    probe: ProfilePolicy = field(default_factory=ProfilePolicy)  # "crowd": zoom 1 misses people
    floor: float = 1.0
    _by_height: float = 1.0
    _window: deque[npt.NDArray[np.float64]] = field(default_factory=deque)
    _since_change: int = 0

    def __post_init__(self) -> None:
        if self.window_frames < 1 or self.min_boxes < 1:
            raise ValueError(
                f"window_frames and min_boxes must be >= 1, got {self.window_frames}, "
                f"{self.min_boxes}"
            )
        self.zoom = self._by_height = self.settings.zoom

    def probe_due(self, t: float) -> bool:
        """Whether the detection frame at ``t`` should also run at zoom 1 and ``max_zoom``."""
        s = self.settings
        return s.mode == "auto" and s.max_zoom > 1.0 and self.probe.probe_due(t)

    def observe_probe(
        self, at_one: npt.NDArray[np.floating], closer: npt.NDArray[np.floating], t: float
    ) -> float:
        """One probe frame: zoom 1's boxes (score >= profile.CHEAP_SCORE) and the ``max_zoom``
        pass's confident ones, in frame pixels -> the zoom to use next."""
        missed = self.probe.observe(at_one, closer, t) == "crowd"
        self.floor = self.settings.max_zoom if missed else 1.0
        self.zoom = max(self._by_height, self.floor)
        return self.zoom

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
        if new != self._by_height:
            self._by_height, self._since_change = new, 0
        self.zoom = max(self._by_height, self.floor)
        return self.zoom

    def choose(self, median_px: float) -> float:
        """The zoom for people of this median height at zoom 1, given the zoom in use."""
        s = self.settings
        if median_px >= s.target_px:
            return 1.0
        if self._by_height == 1.0 and median_px >= s.small_px:
            return 1.0
        want = min(s.max_zoom, s.target_px / max(median_px, 1.0))
        return max(1.0, min(s.max_zoom, math.ceil(want / ZOOM_STEP) * ZOOM_STEP))
