"""How a heatmap's cells are stored in ``heatmap_day.cells``: float64, little-endian, row-major.

A 64x48 grid is 24 kB of bytes that numpy reads and writes without parsing; as a JSON list
(before migration 015) every flush of an ingest batch rounded, formatted and parsed 3,072
floats per camera and day, most of an ingest process's time for windows with heatmaps.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

Cells = NDArray[np.float64]
_DTYPE = np.dtype("<f8")


def encode(cells: Cells) -> bytes:
    return np.ascontiguousarray(cells, _DTYPE).tobytes()


def decode(stored: Any, cols: int, rows: int) -> Cells:
    """The cells of one stored row (bytes; a JSON text from before migration 015 too)."""
    if isinstance(stored, str):
        cells = np.asarray(json.loads(stored), np.float64)
    else:
        cells = np.frombuffer(bytes(stored), _DTYPE).astype(np.float64)
    if cells.shape != (cols * rows,):
        raise ValueError(f"heatmap_day cells: expected {cols}x{rows}={cols * rows}, "
                         f"got {cells.size}")
    return cells
