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


# --------------------------------------------------------------------------- plan images
# A floor plan is an uploaded PNG or JPEG that every heatmap page draws: refuse what would
# not decode, and read the size from the header before decoding, so a small file claiming
# 100000 x 100000 pixels (a decompression bomb) is never expanded.
MAX_PLAN_SIDE = 8192
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class PlanImageError(ValueError):
    """Not a usable floor plan; ``unsupported`` when it is not a PNG or JPEG at all."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise PlanImageError("PNG has no IHDR header")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _SOF:
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7],
                                                                             "big")
        i += 2 + length
    raise PlanImageError("JPEG has no frame header")


def check_plan_image(data: bytes) -> str:
    """The content type of a PNG or JPEG that decodes and is at most MAX_PLAN_SIDE pixels
    a side; PlanImageError otherwise."""
    if data.startswith(PNG_MAGIC):
        kind, (w, h) = "image/png", _png_size(data)
    elif data.startswith(JPEG_MAGIC):
        kind, (w, h) = "image/jpeg", _jpeg_size(data)
    else:
        raise PlanImageError("floor plan must be a PNG or JPEG", unsupported=True)
    if not (0 < w <= MAX_PLAN_SIDE and 0 < h <= MAX_PLAN_SIDE):
        raise PlanImageError(f"floor plan is {w} x {h} pixels; at most {MAX_PLAN_SIDE} a side")
    import cv2  # late: only uploads need the decoder

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.shape[0] != h or img.shape[1] != w:
        raise PlanImageError(f"floor plan {kind} does not decode (corrupt or truncated)")
    return kind
