"""Incoming MQTT messages -> schema objects, or a reason to dead-letter them.

Uses the very classes the edge publishes with (storesense.schema), so edge and gateway agree
on what is valid. Pure: no database, no clock. Never raises on any input.

A window's heatmap cells are the exception to msgspec doing all the work: the window is
decoded with its cells left as JSON text, which gateway/heat_cells.py reads into one typed
array (a 64x48 heatmap's 3,072 Python floats were most of the gateway's CPU). Whatever that
fast path does not read, or finds wrong, is decoded again by the schema's own decoder, so
the windows accepted and the dead-letter reasons are the schema's, byte for byte.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from msgspec import inspect

from gateway import heat_cells
from storesense.schema import (
    NAME_PATTERN,
    PACKED_CELL_MAX,
    DeviceStatus,
    Heatmap,
    MessageError,
    WindowAggregate,
    WindowAggregatePacked,
)
from storesense.topics import Topics

MAX_REASON = 1000
# msgspec names a broken pattern by the pattern itself; say what it means instead
_NAME_RULE = f"matching regex {(NAME_PATTERN[:-1] + chr(92) + 'Z')!r}"
_IDENT_RULE = "matching regex '^[A-Za-z0-9]"


@dataclass(frozen=True)
class Rejected:
    reason: str


Parsed = WindowAggregate | DeviceStatus | Rejected


def _reason(text: str) -> Rejected:
    return Rejected(text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "...")


def _model_error(kind: str, err: MessageError) -> Rejected:
    text = str(err)
    if _NAME_RULE in text:
        text = text.replace(_NAME_RULE, "without control characters (NUL, newline, escape...)")
    elif _IDENT_RULE in text:
        text = f"{text} (letters, digits, '_', '.', '-'; no control characters)"
    return _reason(f"invalid {kind}: {text}")


def _cell_bound() -> float:
    """The schema's upper bound of a heatmap cell (its lower one must be 0: parse_json's)."""
    info = cast(inspect.StructType, inspect.type_info(Heatmap))
    cells = next(f for f in info.fields if f.name == "cells").type
    item = cast(inspect.FloatType, cast(inspect.ListType, cells).item_type)
    if item.ge != 0.0 or item.le is None or item.gt is not None or item.lt is not None:
        raise RuntimeError(f"Heatmap.cells bounds changed: {item}; update parse_json")
    return float(item.le)


CELL_MAX = _cell_bound()
if PACKED_CELL_MAX > CELL_MAX:  # decode_window takes every packed cell as within bounds
    raise RuntimeError(f"PackedHeatmap cells reach {PACKED_CELL_MAX}, over {CELL_MAX}")
# The schema's Heatmap with the cells kept as text (same bounds on cols and rows), and the
# schema's window (both forms: WindowAggregatePacked) with that heatmap: every other field,
# rule and __post_init__ is the schema's own.
_HeatmapText = msgspec.defstruct(
    "_HeatmapText", [(f.name, msgspec.Raw if f.name == "cells" else f.type)
                     for f in msgspec.structs.fields(Heatmap)],
    frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False)
_WindowCellsText = msgspec.defstruct(
    "_WindowCellsText", [("heatmap", _HeatmapText | None, None)],
    bases=(WindowAggregatePacked,),
    frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False)
_FAST = msgspec.json.Decoder(_WindowCellsText)


def decode_window(payload: bytes) -> WindowAggregate:
    """WindowAggregatePacked.from_json (a window in either form), with the heatmap in
    ``heatmap`` whichever form it came in, its cells in an array('d') (a sequence of floats,
    as the list would be) when read here. Raises MessageError exactly when, and as,
    WindowAggregatePacked.from_json does."""
    try:
        w: Any = _FAST.decode(payload)
    except MessageError:
        return WindowAggregatePacked.from_json(payload)  # raises again, in the schema's words
    if w.heatmap_packed is not None:  # checked by the schema: sizes; any uint32 is in bounds
        p = w.heatmap_packed
        heat = Heatmap(cols=p.cols, rows=p.rows,
                       cells=cast(list[float], heat_cells.unpack_ms(p.cells_ms)))
        return cast(WindowAggregate,
                    msgspec.structs.replace(w, heatmap=heat, heatmap_packed=None))
    h = w.heatmap
    if h is None:
        return cast(WindowAggregate, w)
    cells = heat_cells.parse_json(memoryview(h.cells), h.cols * h.rows, CELL_MAX)
    if cells is None:  # not the plain form, or wrong: the schema decides
        return WindowAggregatePacked.from_json(payload)
    heat = Heatmap(cols=h.cols, rows=h.rows, cells=cast(list[float], cells))
    return cast(WindowAggregate, msgspec.structs.replace(w, heatmap=heat))


def same_content(a: WindowAggregate, b: WindowAggregate) -> bool:
    """Equal windows, whichever decoder made them: heatmap cells compare by value, in a
    list or an array."""
    return _comparable(a) == _comparable(b)


def _comparable(w: WindowAggregate) -> tuple[Any, ...]:
    h = w.heatmap
    heat = None if h is None else (h.cols, h.rows, h.cells if isinstance(h.cells, array)
                                   else array("d", h.cells))
    return (heat, *(getattr(w, f) for f in WindowAggregate.__struct_fields__
                    if f != "heatmap"))


def parse_message(topics: Topics, topic: str, payload: bytes) -> Parsed:
    """Validate one message against its topic; a Rejected carries the dead-letter reason."""
    parts = topics.parse(topic)
    if parts is None:
        return _reason(f"topic not under {topics.prefix}/<store>/<id>/(agg|status)")
    store, ident, kind = parts
    try:
        if kind == "agg":
            window = decode_window(payload)
            if (window.store_id, window.camera_id) != (store, ident):
                return _reason(
                    f"topic says store/camera {store}/{ident}, payload says "
                    f"{window.store_id}/{window.camera_id}"
                )
            return window
        if kind == "status":
            status = DeviceStatus.from_json(payload)
            if (status.store_id, status.device_id) != (store, ident):
                return _reason(
                    f"topic says store/device {store}/{ident}, payload says "
                    f"{status.store_id}/{status.device_id}"
                )
            return status
    except MessageError as e:
        return _model_error("window aggregate" if kind == "agg" else "device status", e)
    except Exception as e:  # no input may stop the gateway
        return _reason(f"unreadable payload: {type(e).__name__}: {e}")
    return _reason(f"the gateway does not ingest {kind!r} messages")
