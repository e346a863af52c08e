"""Heatmap cells: read from a window's JSON text, and stored in ``heatmap_day.cells``.

Stored: float64, little-endian, row-major. A 64x48 grid is 24 kB of bytes that numpy reads
and writes without parsing; as a JSON list (before migration 015) every flush of an ingest
batch rounded, formatted and parsed 3,072 floats per camera and day.

Read (``parse_json``): a 64x48 window carries 3,072 numbers. msgspec turned them into 3,072
Python floats in a list (~50 ns each with the bounds), which the checks and the rollup then
walked again and the batch freed; together ~0.3 ms of a gateway's CPU per 19 kB window
(docs/gateway.md). Here they go from the JSON text straight into one typed array:
simdjson parses the array and copies its numbers out as doubles (correctly rounded, as
msgspec's parser and Python's float() are), ~45 µs for a 64x48 grid where a hand-written
numpy and Arrow reader took ~85-90 (2026-12-07, docs/gateway.md).
"""

from __future__ import annotations

import json
import threading
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import simdjson
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
    """The numbers of a JSON array as doubles, or None when the text is not one flat array of
    ``count`` numbers, each in [0, high].

    ``raw`` is one JSON value that msgspec has checked for syntax. On None the caller has the
    schema's own decoder decide, with its own error; simdjson's numbers are correctly rounded,
    as msgspec's are, so nothing this returns differs from what that decoder produces.
    """
    text = bytes(raw)
    # as_buffer flattens nested arrays ("[[1],2]" reads as two numbers): a "[" after the first
    # and the schema decides (one inside a string fails as_buffer anyway). find, not count:
    # memchr, 0.3 against 6.6 µs on 18 kB
    if text.find(b"[", 1) != -1:
        return None
    parser = _parser()
    try:
        doc = parser.parse(text)
    except (ValueError, RuntimeError):  # a number out of a double's or an int64's range
        return None
    try:
        if not isinstance(doc, simdjson.Array) or len(doc) != count:
            return None
        out = array("d")
        out.frombytes(doc.as_buffer(of_type="d"))
    except TypeError:  # an element that is not a number
        return None
    finally:
        del doc  # the parser refuses a new document while a proxy of the old one lives
    cells = np.frombuffer(out, np.float64)
    if count and not (cells.min() >= 0.0 and cells.max() <= high):
        return None
    return out


_local = threading.local()


def _parser() -> simdjson.Parser:
    """This thread's parser: a simdjson parser reuses its buffers and is not thread-safe."""
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser
