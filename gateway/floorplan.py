"""A camera's heatmap moved onto the store's floor plan through the camera's homography.

Edges report heatmaps in their frame's normalised coordinates; the registry holds, per
camera, the 3x3 homography from those coordinates to the floor plan's (``PUT /stores/{id}``).
Mapping at the gateway, at query time, means a camera recalibrated later re-maps all its
history, and the edge never needs to know the plan. Pure: lists of seconds in, lists out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Each frame cell is mapped as SUBSAMPLES x SUBSAMPLES points, each carrying its share of the
# cell's seconds: mapping only cell centres would leave holes where the plan is magnified.
SUBSAMPLES = 4


def _points(cols: int, rows: int) -> npt.NDArray[np.float64]:
    """Subsample points (n, 2) in frame coordinates, SUBSAMPLES^2 per cell in row-major order."""
    k = SUBSAMPLES
    ys, xs = np.mgrid[0 : rows * k, 0 : cols * k]
    pts = np.stack([(xs + 0.5) / (cols * k), (ys + 0.5) / (rows * k)], axis=-1)
    # reorder so that the k*k points of one cell are consecutive
    pts = pts.reshape(rows, k, cols, k, 2).transpose(0, 2, 1, 3, 4)
    return pts.reshape(-1, 2)


def to_floor(
    cells: list[float], cols: int, rows: int, homography: list[list[float]]
) -> tuple[list[float], float]:
    """-> (seconds per floor-plan cell, same cols x rows grid; seconds that fell off the plan).

    Seconds are conserved: every cell's seconds land on the plan or in the second figure.
    """
    if len(cells) != cols * rows:
        raise ValueError(f"cells: expected {cols}x{rows}={cols * rows}, got {len(cells)}")
    h = np.asarray(homography, np.float64)
    if h.shape != (3, 3):
        raise ValueError(f"homography must be 3x3, got {h.shape}")
    weight = np.repeat(np.asarray(cells, np.float64), SUBSAMPLES * SUBSAMPLES)
    weight /= SUBSAMPLES * SUBSAMPLES
    pts = _points(cols, rows)
    mapped = np.c_[pts, np.ones(len(pts))] @ h.T
    w = mapped[:, 2]
    ahead = w > 1e-12  # points behind the camera's horizon do not reach the plan
    x = np.where(ahead, mapped[:, 0] / np.where(ahead, w, 1.0), -1.0)
    y = np.where(ahead, mapped[:, 1] / np.where(ahead, w, 1.0), -1.0)
    on = ahead & (x >= 0) & (x < 1) & (y >= 0) & (y < 1)
    idx = (y[on] * rows).astype(np.int64) * cols + (x[on] * cols).astype(np.int64)
    floor = np.bincount(idx, weights=weight[on], minlength=cols * rows)
    return [float(v) for v in floor], float(weight[~on].sum())
