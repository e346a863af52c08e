"""Staff exclusion: tables of small synthetic tracks through the analytics core."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.analytics.staff import StaffMarker
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, LineSpec, ZoneSettings, ZoneSpec

# A door line down the middle (walking from image right to image left is in), a till
# zone at the bottom right that is staff-only, a stock room door line at the far right,
# and a display zone on the left.
DOOR = LineSpec(name="door", points=(0.5, 0.0, 0.5, 1.0))  # image right to left is in
STOCK = LineSpec(name="stock", points=(0.95, 0.0, 0.95, 1.0), staff=True)
TILL = ZoneSpec(name="till", polygon=[(0.7, 0.7), (0.9, 0.7), (0.9, 1.0), (0.7, 1.0)],
                staff_only=True)
DISPLAY = ZoneSpec(name="display", polygon=[(0.0, 0.0), (0.45, 0.0), (0.45, 1.0), (0.0, 1.0)])


def cfg() -> AnalyticsConfig:
    return AnalyticsConfig(lines=[DOOR, STOCK], zones=[TILL, DISPLAY],
                           zone=ZoneSettings(inertia_frames=2))


def walk(points: list[tuple[float, float]],
         step_s: float = 0.2) -> list[tuple[float, float, float]]:
    """(t, x, y) along straight segments between the points, ~0.02 apart."""
    out: list[tuple[float, float, float]] = []
    t = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        n = max(2, int(np.hypot(x1 - x0, y1 - y0) / 0.02))
        for i in range(n):
            out.append((t, x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n))
            t += step_s
    out.append((t, *points[-1]))
    return out


def run(path: list[tuple[float, float, float]], tid: int = 7) -> dict[str, object]:
    a = Analytics(cfg())
    outs = [a.update(np.array([tid]), np.array([[x, y]]), t) for t, x, y in path]
    end = path[-1][0]
    outs += [a.update(np.zeros(0, np.int64), np.zeros((0, 2)), end + 1 + i) for i in range(6)]
    return {
        "ins": sum(e.direction == "in" for o in outs for e in o.crossings),
        "outs": sum(e.direction == "out" for o in outs for e in o.crossings),
        "staff_ins": sum(e.direction == "in" for o in outs for e in o.staff_crossings),
        "staff_outs": sum(e.direction == "out" for o in outs for e in o.staff_crossings),
        "marked": sum(len(o.new_staff) for o in outs),
        "display_visits": sum(1 for o in outs for v in o.ended if v.zone == "display"),
        "till_visits": sum(1 for o in outs for v in o.ended if v.zone == "till"),
        "finished_staff": [k for o in outs for k in o.finished_staff],
    }


@pytest.mark.parametrize(("case", "points", "expected"), [
    ("customer walks in to the display",
     [(0.8, 0.3), (0.3, 0.3), (0.2, 0.5)],
     {"ins": 1, "staff_ins": 0, "marked": 0, "display_visits": 1}),
    ("staff comes from behind the till, walks out of the door",
     [(0.8, 0.85), (0.8, 0.85), (0.8, 0.5), (0.2, 0.5)],
     {"ins": 1, "staff_ins": 0, "marked": 1, "display_visits": 0}),
    ("customer brushes the till zone for a moment: not staff",
     [(0.6, 0.5), (0.72, 0.72), (0.6, 0.5), (0.3, 0.4)],
     {"ins": 1, "staff_ins": 0, "marked": 0, "display_visits": 1}),
    ("staff out of the stock room, then through the door and back to the display",
     [(0.99, 0.3), (0.8, 0.3), (0.2, 0.3)],
     {"ins": 1, "staff_ins": 0, "marked": 1, "display_visits": 0}),
])
def test_staff_rules(case: str, points: list[tuple[float, float]],
                     expected: dict[str, int]) -> None:
    got = run(walk(points))
    # a walk from x > 0.5 to x < 0.5 is one 'in'; who made it
    # decides whether it is a visitor (crossings) or a staff pass (staff_crossings)
    if expected["marked"]:
        assert (got["ins"], got["staff_ins"]) == (0, 1), case
    else:
        assert (got["ins"], got["staff_ins"]) == (1, 0), case
    assert got["marked"] == expected["marked"], case
    assert got["display_visits"] == expected["display_visits"], case
    assert got["till_visits"] == 0, case  # a staff-only zone reports no visits
    # the pipeline drops the demographic vote of a track that ends as staff
    assert got["finished_staff"] == ([7] if expected["marked"] else []), case


def test_staff_for_the_rest_of_the_track_life_then_forgotten() -> None:
    m = StaffMarker([TILL], min_frames=2, min_s=1.0)
    ids = np.array([3])
    inside, outside = np.array([[0.8, 0.85]]), np.array([[0.3, 0.3]])
    assert m.update(ids, inside, 0.0) == []
    assert m.update(ids, inside, 0.5) == []  # two frames but only half a second
    assert m.update(ids, inside, 1.0) == [3]
    assert m.update(ids, outside, 60.0) == [] and m.is_staff(3)  # still staff far away
    m.rename(3, 9)  # identity repair continued the track under another id
    assert m.is_staff(9) and not m.is_staff(3)
    m.end([9])
    assert not m.is_staff(9)  # a new track with a reused id starts as a stranger
    assert m.marked_total == 1


def test_a_staff_line_crossing_marks_the_track() -> None:
    m = StaffMarker([])
    assert m.update(np.array([1, 2]), np.array([[0.1, 0.1], [0.2, 0.2]]), 0.0, [2]) == [2]
    assert m.staff_mask(np.array([1, 2])).tolist() == [False, True]
    assert m.update(np.array([2]), np.array([[0.2, 0.2]]), 1.0, [2]) == []  # marked once


def test_staff_zone_config_errors_name_the_zone() -> None:
    with pytest.raises(ValueError, match="staff-only zone cannot be a queue"):
        ZoneSpec(name="q", polygon=[(0, 0), (1, 0), (1, 1)], kind="queue", staff_only=True)
