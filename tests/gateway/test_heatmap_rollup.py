"""heatmap_day: grids summed per store, camera and local day across ingest batches, stored
as float64 bytes (gateway/heat_cells.py); migration 015 converts the JSON lists of before."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from gateway import heat_cells, migrations, queries
from gateway.db import connect
from gateway.storage import Storage
from storesense.schema import Heatmap, WindowAggregate
from tests.gateway.conftest import PINNED_NOW
from tests.gateway.helpers import message, store, window

DAY = datetime(2026, 11, 23, 10, tzinfo=UTC)


def _heat(w: WindowAggregate, cols: int, rows: int, cells: list[float]) -> WindowAggregate:
    return msgspec.structs.replace(w, heatmap=Heatmap(cols=cols, rows=rows, cells=cells))


def _grid(seed: int, n: int) -> list[float]:
    # hundredths: sums that are not exact in binary, and no ties when rounded to hundredths
    return [round(((seed * 7 + k * 3) % 11) / 4 + k / 100, 2) for k in range(n)]


def _sum(grids: list[list[float]]) -> list[float]:
    return [round(sum(col), 2) for col in zip(*grids, strict=True)]


def test_grids_add_up_across_batches_cameras_and_days(storage: Storage) -> None:
    storage.upsert_stores([store("s1"), store("s2")])
    floor1 = [_grid(i, 6) for i in range(5)]
    floor2 = [_grid(10 + i, 6) for i in range(3)]
    # batch 1: two windows of s1's floor camera and one of s2; batch 2: the rest, one of
    # them the next day; each through ingest (validation, rollups) as MQTT delivers them
    first = [_heat(window("s1", DAY + timedelta(minutes=i), "floor", 0, 0), 3, 2, floor1[i])
             for i in range(2)]
    first.append(_heat(window("s2", DAY, "floor", 0, 0), 3, 2, floor2[0]))
    second = [_heat(window("s1", DAY + timedelta(minutes=i), "floor", 0, 0), 3, 2, floor1[i])
              for i in range(2, 5)]
    second += [_heat(window("s2", DAY + timedelta(minutes=i), "floor", 0, 0), 3, 2, floor2[i])
               for i in (1, 2)]
    second.append(_heat(window("s1", DAY + timedelta(days=1), "floor", 0, 0), 3, 2,
                        floor2[2]))
    assert storage.ingest([message(w) for w in first]).stored == 3
    assert storage.ingest([message(w) for w in second]).stored == 6
    assert storage.ingest([message(w) for w in second]).duplicates == 6  # added once

    day = DAY.date()
    s1 = queries.heatmap(storage.read(), "s1", day, day, "floor")
    assert s1 is not None and (s1["cols"], s1["rows"], s1["space"]) == (3, 2, "frame")
    assert s1["cells"] == _sum(floor1)
    assert s1["total_s"] == round(sum(sum(g) for g in floor1), 2)
    both_days = queries.heatmap(storage.read(), "s1", day, day + timedelta(days=1), "floor")
    assert both_days is not None and both_days["cells"] == _sum([*floor1, floor2[2]])
    s2 = queries.heatmap(storage.read(), "s2", day, day, None)
    assert s2 is not None and s2["cells"] == _sum(floor2)
    assert queries.heatmap(storage.read(), "s1", day, day, "door") is None


def test_a_camera_whose_grid_changes_keeps_the_newer_grid_for_the_day(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    old = _heat(window("s1", DAY, "floor", 0, 0), 3, 2, _grid(1, 6))
    new = [_heat(window("s1", DAY + timedelta(minutes=m), "floor", 0, 0), 2, 2, _grid(m, 4))
           for m in (1, 2)]
    storage.store_windows([old])
    storage.store_windows([new[0]])  # changed between batches
    storage.store_windows([new[1], _heat(window("s1", DAY + timedelta(minutes=3), "floor",
                                                0, 0), 3, 2, _grid(3, 6))])  # and within one
    found = queries.heatmap(storage.read(), "s1", DAY.date(), DAY.date(), "floor")
    assert found is not None and (found["cols"], found["rows"]) == (3, 2)
    assert found["cells"] == _sum([_grid(3, 6)])


def test_cells_are_stored_as_float64_bytes_and_a_bad_length_is_refused() -> None:
    cells = heat_cells.decode(heat_cells.encode(heat_cells.decode("[0.5, 1.25]", 2, 1)), 2, 1)
    assert cells.tolist() == [0.5, 1.25]
    assert len(heat_cells.encode(cells)) == 16
    with pytest.raises(ValueError, match="expected 2x2=4, got 2"):
        heat_cells.decode(heat_cells.encode(cells), 2, 2)


def test_migration_015_turns_json_cells_into_bytes_with_the_same_answers(
        database: str | Path) -> None:
    conn = connect(database)
    try:
        migrations.apply(conn, migrations.MIGRATIONS[:14])  # a database from before
        old_rows = [("s1", "floor", f"2026-11-{d}", 3, 2, json.dumps(_grid(d, 6)))
                    for d in range(20, 24)]
        old_rows.append(("s2", "floor", "2026-11-20", 1, 1, "[12.5]"))
        with conn.transaction():
            conn.executemany("INSERT INTO heatmap_day VALUES (?, ?, ?, ?, ?, ?)", old_rows)
        start, end = date(2026, 11, 20), date(2026, 11, 23)
        before = queries.heatmap(conn, "s1", start, end, "floor")
        old_chunk = migrations.HEAT_CHUNK
        migrations.HEAT_CHUNK = 2  # several chunks, as on a chain's years of rows
        try:
            assert migrations.apply(conn, migrations.MIGRATIONS[:15]) == [
                "015_heatmap_cells_binary"]
        finally:
            migrations.HEAT_CHUNK = old_chunk
        assert conn.execute("SELECT COUNT(*) FROM heatmap_day").fetchone()[0] == 5
        assert all(isinstance(bytes(r[0]), bytes) and len(r[0]) == 8 * r[1] for r in
                   conn.execute("SELECT cells, cols * rows FROM heatmap_day"))
        after = queries.heatmap(conn, "s1", start, end, "floor")
        assert before is not None and after == before
        assert after["cells"] == _sum([_grid(d, 6) for d in range(20, 24)])
        s2 = queries.heatmap(conn, "s2", start, start, None)
        assert s2 is not None and s2["cells"] == [12.5]
    finally:
        conn.close()


def test_an_upgraded_gateway_adds_new_windows_to_the_converted_rows(
        database: str | Path) -> None:
    conn = connect(database)
    try:
        migrations.apply(conn, migrations.MIGRATIONS[:14])
        with conn.transaction():
            conn.execute("INSERT INTO heatmap_day VALUES (?, ?, ?, ?, ?, ?)",
                         ("s1", "floor", DAY.date().isoformat(), 3, 2, json.dumps(_grid(0, 6))))
    finally:
        conn.close()
    storage = Storage(database, clock=lambda: PINNED_NOW)
    try:
        storage.upsert_stores([store("s1")])
        storage.store_windows([_heat(window("s1", DAY, "floor", 0, 0), 3, 2, _grid(1, 6))])
        found = queries.heatmap(storage.read(), "s1", DAY.date(), DAY.date(), "floor")
        assert found is not None and found["cells"] == _sum([_grid(0, 6), _grid(1, 6)])
    finally:
        storage.close()
