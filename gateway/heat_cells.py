"""Heatmap cells: read from a window's JSON text, and stored in ``heatmap_day.cells``.

Stored: float64, little-endian, row-major. A 64x48 grid is 24 kB of bytes that numpy reads
and writes without parsing; as a JSON list (before migration 015) every flush of an ingest
batch rounded, formatted and parsed 3,072 floats per camera and day.

Read (``parse_json``): a 64x48 window carries 3,072 numbers. msgspec turned them into 3,072
Python floats in a list (~50 ns each with the bounds), which the checks and the rollup then
walked again and the batch freed; together ~0.3 ms of a gateway's CPU per 19 kB window
(docs/gateway.md). Here they go from the JSON text straight into one typed array: numpy
finds the commas, Arrow's string-to-double cast (correctly rounded, as msgspec's parser and
Python's float() are) converts the numbers.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

Cells = NDArray[np.float64]
_DTYPE = np.dtype("<f8")
_F64, _BINARY = pa.float64(), pa.binary()
_COMMA, _ZERO, _OPEN, _CLOSE, _DIGIT_MAX = 44, 48, 91, 93, 57


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


def grid(cells: Sequence[float]) -> Cells:
    """A window's cells as float64 (no copy when ``parse_json`` made them; a list goes
    through array('d'), which takes msgspec's floats into a buffer faster than numpy does)."""
    return np.frombuffer(cells if isinstance(cells, array) else array("d", cells), np.float64)


def unpack_ms(cells_ms: bytes) -> array[float]:
    """The cells of a PackedHeatmap (little-endian uint32 thousandths) in seconds: each the
    double nearest to n/1000, as the JSON number "n/1000" written out would read."""
    ms = np.frombuffer(cells_ms, "<u4")
    out = array("d", bytes(8 * ms.size))
    np.divide(ms, 1000.0, out=np.frombuffer(out, np.float64))  # into the array's own buffer
    return out


def parse_json(raw: bytes | memoryview, count: int, high: float) -> array[float] | None:
    """The numbers of a JSON array as doubles, or None when the text is not in the plain
    form this reads, or a number is out of [0, high], or there are not ``count``.

    ``raw`` must be one well-formed JSON value (msgspec checked the syntax: no empty
    elements, no leading zeros, no "1." or ".5"). The plain form has only digits, points
    and commas: every element is then a non-negative number without an exponent. Anything
    else (a space, a sign, an exponent, strings, nesting) returns None, and the caller
    has the schema's own decoder decide, with its own error; so does every failure here,
    and nothing this returns differs from what that decoder would have produced.
    """
    a = np.frombuffer(raw, np.uint8)
    if a.size < 3 or a[0] != _OPEN or a[-1] != _CLOSE:
        return None
    body = a[1:-1]
    # ',' '-' '.' '/' and the digits are 44-57; '-' fails the cast below (as "0-1") or the
    # bound (a first element "-1"), and '/' cannot occur in well-formed JSON outside a string
    if body.min() < _COMMA or body.max() > _DIGIT_MAX:
        return None
    comma = body == _COMMA
    ends = np.flatnonzero(comma)
    if ends.size != count - 1:
        return None
    offsets = np.empty(count + 1, np.int32)
    offsets[0], offsets[1:count], offsets[count] = 0, ends, body.size
    # the commas become leading zeros of the numbers after them ("0.5,1.25" -> "0.5", "01.25"),
    # so the elements are contiguous strings for Arrow without copying them one by one
    text = body + comma.view(np.uint8) * np.uint8(_ZERO - _COMMA)
    # binary, not string: the cast then skips a UTF-8 check (the bytes are ASCII digits)
    strings = pa.BinaryArray.from_buffers(_BINARY, count, [None, pa.py_buffer(offsets),
                                                           pa.py_buffer(text)])
    try:
        values = pc.cast(strings, _F64)
    except pa.ArrowInvalid:
        return None
    out = array("d")
    out.frombytes(memoryview(values.buffers()[1])[:8 * count])  # no nulls: the doubles
    cells = np.frombuffer(out, np.float64)
    if not (cells.min() >= 0.0 and cells.max() <= high):
        return None
    return out
