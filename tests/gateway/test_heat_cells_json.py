"""Heatmap cells read from the JSON text into one array (gateway/heat_cells.py parse_json,
gateway/validate.py decode_window): the same windows and the same dead-letter reasons as
the schema's own decoder, on any text, and stored alike on both engines; and the packed
heatmap (WindowAggregatePacked, issue 17) stored as its JSON twin is."""

from __future__ import annotations

import base64
import json
from array import array
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import heat_cells, queries
from gateway.bench import payload, store_ids
from gateway.storage import REUSED_ID, Storage
from gateway.validate import CELL_MAX, decode_window, parse_message, same_content
from storesense.schema import (
    Heatmap,
    MessageError,
    PackedHeatmap,
    WindowAggregate,
    WindowAggregatePacked,
)
from tests.gateway.helpers import TOPICS, message, store, window

DAY = datetime(2026, 11, 23, 10, tzinfo=UTC)
PLAIN = msgspec.json.Encoder()  # what an edge sends: no spaces, shortest float text


def _with_cells(text: str, cols: int, rows: int, start: datetime = DAY) -> bytes:
    """A floor window whose heatmap cells are ``text`` verbatim."""
    base = msgspec.structs.replace(window("s1", start, "floor", 0, 0),
                                   heatmap=Heatmap(cols=1, rows=1, cells=[0.0]))
    doc = base.to_json().decode()
    old = '"cols":1,"rows":1,"cells":[0.0]'
    assert doc.count(old) == 1
    return doc.replace(old, f'"cols":{cols},"rows":{rows},"cells":{text}').encode()


def _outcome(payload: bytes, decode: object) -> object:
    try:
        w = decode(payload)  # type: ignore[operator]
    except MessageError as e:
        return ("error", str(e))
    return ("window", w)


def _assert_same_as_schema(payload: bytes) -> None:
    fast = _outcome(payload, decode_window)
    schema = _outcome(payload, WindowAggregatePacked.from_json)  # the gateway's schema class
    assert fast[0] == schema[0], (payload[-300:], fast, schema)
    if fast[0] == "error":
        assert fast == schema
    else:
        got, want = fast[1], schema[1]
        assert isinstance(got, WindowAggregate) and isinstance(want, WindowAggregate)
        assert same_content(got, want)
        assert got.heatmap is not None and want.heatmap is not None
        assert list(got.heatmap.cells) == want.heatmap.cells  # value for value, not ~equal


# numbers as JSON writers spell them: shortest repr, fixed decimals, integers, exponents,
# negatives, and the odd long one
_number = st.one_of(
    st.floats(0, 1e4, allow_nan=False).map(repr),
    st.floats(0, 1e4, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.integers(0, 2_000_000_000).map(str),
    st.floats(0, 1e12, allow_nan=False).map(lambda x: f"{x:e}"),
    st.floats(-10, 10, allow_nan=False).map(lambda x: f"{x:.2f}"),
    st.text("0123456789", min_size=1, max_size=25).map(lambda d: "0." + d),
    st.sampled_from(["0", "-0", "-0.0", "1000000000", "1000000000.0001", "1E3", "0.0"]),
)


@settings(max_examples=400, deadline=None)
@given(numbers=st.lists(_number, min_size=1, max_size=12),
       sep=st.sampled_from([",", ", ", " ,"]), declared=st.integers(0, 2))
def test_any_cells_text_gives_what_the_schema_decoder_gives(
        numbers: list[str], sep: str, declared: int) -> None:
    # declared: the grid's size agrees, or is one short, or one over
    n = len(numbers)
    cols = max(1, n + (0, -1, 1)[declared])
    _assert_same_as_schema(_with_cells("[" + sep.join(numbers) + "]", cols, 1))


@pytest.mark.parametrize("text", [
    "[]", "[[1],2]", '["1",2]', "[1,null]", "[true,1]", "[1e400,1]", "[1,{}]", "[ 1,2]",
    "[1,2,3]", "[0.1,-0.1]", "[NaN,1]", "[1,,2]", "[01,2]", "[1.,2]", "[1,2", "{}", "null",
    '"[1,2]"', "[1000000001,1]", "[9999999999999999999999999,0]",
])
def test_hostile_cells_are_refused_with_the_schema_decoders_reason(text: str) -> None:
    _assert_same_as_schema(_with_cells(text, 2, 1))


def test_a_second_error_after_the_cells_is_reported_as_the_schema_reports_it() -> None:
    bad_cells = _with_cells("[1,-2]", 2, 1)
    both = bad_cells.replace(b'"frames":900', b'"frames":-1')
    assert both != bad_cells
    with pytest.raises(MessageError) as fast:
        decode_window(both)
    with pytest.raises(MessageError) as schema:
        WindowAggregatePacked.from_json(both)
    assert str(fast.value) == str(schema.value)


def test_flat_numeric_cells_are_read_into_an_array_and_other_forms_by_the_schema() -> None:
    plain = decode_window(_with_cells("[0.5,1.25,0,3.125]", 2, 2))
    assert plain.heatmap is not None
    assert plain.heatmap.cells == array("d", [0.5, 1.25, 0.0, 3.125])
    spaced = decode_window(_with_cells("[0.5, 1.25, 0, 3.125]", 2, 2))
    assert spaced.heatmap is not None and spaced.heatmap.cells == plain.heatmap.cells
    assert same_content(plain, spaced)
    assert heat_cells.parse_json(b"[0.5,1.25]", 2, CELL_MAX) == array("d", [0.5, 1.25])
    assert heat_cells.parse_json(b"[5e-1, 1]", 2, CELL_MAX) == array("d", [0.5, 1.0])
    assert heat_cells.parse_json(b"[0.5,1.25]", 3, CELL_MAX) is None  # count
    assert heat_cells.parse_json(b"[0.5,2]", 2, 1.5) is None  # bound
    for refused in (b"[0.5,-1]", b"[-1,0.5]", b"0.5", b"[[1],2]", b'[1,"2"]', b"[1,null]",
                    b'[1,"[2]"]', b"[1e400,1]", b"[99999999999999999999999,1]", b"{}"):
        assert heat_cells.parse_json(refused, 2, CELL_MAX) is None, refused
    # nested arrays are not flattened into numbers: the schema refuses them, with its reason
    with pytest.raises(MessageError):
        decode_window(_with_cells("[[0.5],1.25,0,3.125]", 2, 2))


def test_the_reader_is_safe_across_threads() -> None:
    """Each thread has its own parser (a simdjson parser is not thread-safe)."""
    texts = [("[" + ",".join(f"{(i * 7 + k) % 11 / 8}" for k in range(3072)) + "]").encode()
             for i in range(8)]
    want = [array("d", json.loads(t)) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: heat_cells.parse_json(t, 3072, CELL_MAX), texts * 25))
    assert got == want * 25


def _floor_payload(start: datetime, cells: list[float], spaced: bool) -> tuple[str, bytes]:
    w = msgspec.structs.replace(window("s1", start, "floor", 0, 0),
                                heatmap=Heatmap(cols=3, rows=2, cells=cells))
    if not spaced:
        return message(w)
    # the same window as Python's json module writes it: spaces after the commas, so the
    # schema's decoder reads it, not parse_json
    return (TOPICS.aggregate("s1", "floor"),
            json.dumps(json.loads(w.to_json())).encode())


def test_both_paths_store_alike_and_a_respelled_copy_is_a_duplicate(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    grids = [[0.125 * (i + k) for k in range(6)] for i in range(4)]
    first = [_floor_payload(DAY + timedelta(minutes=i), grids[i], spaced=i % 2 == 1)
             for i in range(4)]
    fast = parse_message(TOPICS, *first[0])
    assert isinstance(fast, WindowAggregate) and fast.heatmap is not None
    assert isinstance(fast.heatmap.cells, array)
    assert storage.ingest(first).stored == 4
    # each window again, spelled the other way: same content, other bytes
    again = [_floor_payload(DAY + timedelta(minutes=i), grids[i], spaced=i % 2 == 0)
             for i in range(4)]
    assert again[0][1] != first[0][1]
    result = storage.ingest(again)
    assert (result.stored, result.duplicates, result.dead) == (0, 4, 0)
    found = queries.heatmap(storage.read(), "s1", DAY.date(), DAY.date(), "floor")
    assert found is not None
    assert found["cells"] == [round(sum(g[k] for g in grids), 3) for k in range(6)]
    # a copy of a stored id with other cells is not a duplicate
    changed = _floor_payload(DAY, [9.0] * 6, spaced=False)
    assert storage.ingest([changed]).dead == 1
    reason = storage.read().execute(
        "SELECT reason FROM dead_letters ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert reason == REUSED_ID


def test_hostile_heatmaps_are_dead_lettered_with_the_schemas_reasons(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    starts = [DAY + timedelta(minutes=i) for i in range(5)]
    hostile = [
        _with_cells("[1,-2]", 2, 1, starts[0]),
        _with_cells("[1,2,3]", 2, 1, starts[1]),
        _with_cells("[1,1000000001]", 2, 1, starts[2]),
        _with_cells("[20000,20000]", 2, 1, starts[3]),  # each cell fine, their sum is not
    ]
    good = _with_cells("[1.5,2.25]", 2, 1, starts[4])
    topic = TOPICS.aggregate("s1", "floor")
    result = storage.ingest([(topic, p) for p in [*hostile, good]])
    assert (result.stored, result.dead) == (1, 4)
    reasons = [r[0] for r in storage.read().execute(
        "SELECT reason FROM dead_letters ORDER BY id")]
    for text, reason in zip(hostile[:3], reasons[:3], strict=True):
        with pytest.raises(MessageError) as schema:
            WindowAggregatePacked.from_json(text)
        assert reason == f"invalid window aggregate: {schema.value}"
    assert reasons[3] == "implausible heatmap: 40000 person-seconds"


def _packed(start: datetime, cells: list[float]) -> tuple[str, bytes]:
    w = msgspec.structs.replace(window("s1", start, "floor", 0, 0),
                                heatmap=Heatmap(cols=3, rows=2, cells=cells))
    packed = WindowAggregatePacked.packing(w)
    assert isinstance(packed, WindowAggregatePacked) and packed.heatmap_packed is not None
    return TOPICS.aggregate("s1", "floor"), packed.to_json()


def test_a_packed_heatmap_is_stored_as_its_json_twin_and_either_is_the_others_copy(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    grids = [[0.125 * (i + k) + 0.02 for k in range(6)] for i in range(4)]
    packed = [_packed(DAY + timedelta(minutes=i), grids[i]) for i in range(4)]
    plain = [_floor_payload(DAY + timedelta(minutes=i), grids[i], spaced=False)
             for i in range(4)]
    w = decode_window(packed[0][1])
    assert w.heatmap is not None and list(w.heatmap.cells) == grids[0]
    assert same_content(w, decode_window(plain[0][1]))
    assert storage.ingest(packed[:2] + plain[2:]).stored == 4
    result = storage.ingest(plain[:2] + packed[2:])
    assert (result.stored, result.duplicates, result.dead) == (0, 4, 0)
    found = queries.heatmap(storage.read(), "s1", DAY.date(), DAY.date(), "floor")
    assert found is not None  # the API answers in hundredths
    assert found["cells"] == [round(sum(g[k] for g in grids), 2) for k in range(6)]


def test_packed_heatmaps_are_checked_and_only_new_gateways_take_them(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    topic, good = _packed(DAY, [1.5] * 6)
    doc = json.loads(good)
    both = {**doc, "heatmap": {"cols": 3, "rows": 2, "cells": [1.5] * 6}}
    short = {**doc, "heatmap_packed": {**doc["heatmap_packed"], "cells_ms": "AAAA"}}
    huge = {**doc, "heatmap_packed": {**doc["heatmap_packed"],  # 4.29M s a cell, 6 cells
                                      "cells_ms": base64.b64encode(b"\xff" * 24).decode()}}
    hostile = [json.dumps(d).encode() for d in (both, short, huge)]
    result = storage.ingest([(topic, p) for p in hostile])
    assert (result.stored, result.dead) == (0, 3)
    reasons = [r[0] for r in storage.read().execute(
        "SELECT reason FROM dead_letters ORDER BY id")]
    assert "heatmap and heatmap_packed: send one of them" in reasons[0]
    assert "cells_ms: expected 4 bytes x 3x2=24, got 3" in reasons[1]
    assert reasons[2].startswith("implausible heatmap: 2.57698e+07 person-seconds")
    # a gateway from before reads WindowAggregate only: the reason an edge sends packed
    # windows only to gateways that read them (docs/gateway.md)
    with pytest.raises(MessageError, match="unknown field `heatmap_packed`"):
        WindowAggregate.from_json(good)


def test_only_whole_thousandths_within_uint32_pack() -> None:
    assert PackedHeatmap.of(Heatmap(cols=2, rows=1, cells=[0.001, 4294967.295])) is not None
    assert PackedHeatmap.of(Heatmap(cols=1, rows=1, cells=[0.0005])) is None
    assert PackedHeatmap.of(Heatmap(cols=1, rows=1, cells=[4294967.296])) is None
    plain = window("s1", DAY)
    assert WindowAggregatePacked.packing(plain) is plain  # nothing to pack: sent as it was


def test_the_benchmarks_packed_windows_are_its_json_windows() -> None:
    stores = store_ids(3)
    for i in range(7):
        plain = decode_window(payload(i, stores, (8, 6))[1])
        packed = decode_window(payload(i, stores, (8, 6), packed=True)[1])
        assert plain.heatmap is not None and isinstance(plain.heatmap.cells, array)
        assert same_content(plain, packed)
