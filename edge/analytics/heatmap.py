"""Dwell-weighted foot-point heatmap: seconds spent per cell of a normalised grid.

Accumulation only; drawing, if wanted, is ``render()``, kept apart so the analytic state never
lives in a drawing class. An optional homography maps normalised image points to a normalised
floor plan first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt


@dataclass
class HeatmapGrid:
    cols: int
    rows: int
    homography: npt.NDArray[np.float64] | None = None  # 3x3, image (0..1) -> floor plan (0..1)
    max_step_s: float = 1.0  # cap per observation, so a stall in the feed adds no fake dwell
    grid: npt.NDArray[np.float64] = field(init=False)
    _last_t: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.cols < 1 or self.rows < 1:
            raise ValueError(f"heatmap needs cols, rows >= 1, got {self.cols}x{self.rows}")
        if self.homography is not None and np.shape(self.homography) != (3, 3):
            raise ValueError(f"homography must be 3x3, got {np.shape(self.homography)}")
        self.grid = np.zeros((self.rows, self.cols), np.float64)

    def add(self, feet: npt.NDArray[np.floating], t: float) -> None:
        """Each foot point gets the time since the previous frame in its cell."""
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), self.max_step_s)
        self._last_t = t
        if dt == 0.0 or len(feet) == 0:
            return
        pts = np.asarray(feet, np.float64).reshape(-1, 2)
        if self.homography is not None:
            pts = cv2.perspectiveTransform(pts[None], self.homography)[0]
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < 1) & (pts[:, 1] >= 0) & (pts[:, 1] < 1)
        c = (pts[ok, 0] * self.cols).astype(int)
        r = (pts[ok, 1] * self.rows).astype(int)
        np.add.at(self.grid, (r, c), dt)

    def take(self) -> npt.NDArray[np.float64]:
        """The accumulated grid; the accumulator starts again from zero."""
        out, self.grid = self.grid, np.zeros_like(self.grid)
        return out


def render(grid: npt.NDArray[np.float64], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """A colour image of a grid (for a demo or a report), width x height = size."""
    peak = float(grid.max()) or 1.0
    img = (grid / peak * 255).astype(np.uint8)
    big = cv2.resize(img, size, interpolation=cv2.INTER_NEAREST)
    return np.asarray(cv2.applyColorMap(big, cv2.COLORMAP_JET), np.uint8)
