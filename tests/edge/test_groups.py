"""Groups at the entrance: tables of small synthetic walks through the analytics core."""

from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.groups import GROUP_DIST_BODIES, GroupCounter
from edge.pipeline import Analytics
from storesense.schema import AnalyticsConfig, LineSpec

# A horizontal door line; walking down the image (towards the camera) is 'in'.
DOOR = LineSpec(name="door", points=(0.0, 0.5, 1.0, 0.5))
HEIGHT = 0.2  # every walker's box is a fifth of the frame tall: 1.5 bodies = 0.3 apart


def walker(x: float, start_y: float, delay_s: float, dx: float = 0.0,
           speed: float = 0.1) -> list[tuple[float, float, float]]:
    """(t, x, y) of someone walking down from start_y to 0.9 at ``speed`` per second,
    starting ``delay_s`` late, drifting ``dx`` per second sideways; sampled at 10 per second."""
    out = []
    for i in range(200):
        t = delay_s + i / 10
        y = start_y + speed * i / 10
        if y > 0.9:
            break
        out.append((round(t, 3), x + dx * i / 10, y))
    return out


def groups_of(walkers: list[list[tuple[float, float, float]]]) -> tuple[int, int]:
    """-> (ins, groups) after running the walkers through the analytics."""
    a = Analytics(AnalyticsConfig(lines=[DOOR]))
    frames: dict[float, list[tuple[int, float, float]]] = {}
    for tid, path in enumerate(walkers, start=1):
        for t, x, y in path:
            frames.setdefault(t, []).append((tid, x, y))
    ins = groups = 0
    for t in sorted(frames):
        rows = frames[t]
        out = a.update(np.array([r[0] for r in rows]), np.array([[r[1], r[2]] for r in rows]),
                       t, np.full(len(rows), HEIGHT), frame_size=(1000, 1000))
        ins += sum(e.direction == "in" for e in out.crossings)
        groups += out.groups
    out = a.finish()
    ins += sum(e.direction == "in" for e in out.crossings)
    return ins, groups + out.groups


@pytest.mark.parametrize(("case", "walkers", "expected"), [
    ("one person", [walker(0.5, 0.2, 0)], (1, 1)),
    ("a couple side by side", [walker(0.45, 0.2, 0), walker(0.55, 0.2, 0)], (2, 1)),
    ("a family of three, one a step behind",
     [walker(0.4, 0.2, 0), walker(0.5, 0.2, 0), walker(0.45, 0.15, 0)], (3, 1)),
    ("two strangers far apart at the same moment",
     [walker(0.1, 0.2, 0), walker(0.9, 0.2, 0)], (2, 2)),
    ("the same spot, ten seconds apart",
     [walker(0.5, 0.2, 0), walker(0.5, 0.2, 10)], (2, 2)),
    ("two who meet at the door from opposite sides",
     [walker(0.1, 0.3, 0, dx=0.2), walker(0.9, 0.3, 0, dx=-0.2)], (2, 2)),
    ("a chain: second with the first, third with the second",
     [walker(0.3, 0.2, 0), walker(0.5, 0.2, 0.5), walker(0.7, 0.2, 1.0)], (3, 1)),
])
def test_group_rule(case: str, walkers: list[list[tuple[float, float, float]]],
                    expected: tuple[int, int]) -> None:
    assert groups_of(walkers) == expected, case


def test_distance_is_in_body_heights_so_perspective_does_not_matter() -> None:
    # two people 1.2 body heights apart, drawn small (far) and large (near): both a group
    for h in (0.05, 0.4):
        g = GroupCounter(frame_size=(1000, 1000))
        for i in range(20):
            t = i / 10
            g.observe(np.array([1, 2]), np.array([[0.5, 0.5], [0.5 + 1.2 * h, 0.5]]),
                      np.array([h, h]), t)
        assert g.on_in(1, 1.9) is True
        assert g.on_in(2, 1.9) is False, h
    assert GROUP_DIST_BODIES > 1.2


def test_a_partner_never_seen_a_second_before_is_not_together() -> None:
    g = GroupCounter(frame_size=(100, 100))
    for i in range(20):
        g.observe(np.array([1]), np.array([[0.5, 0.5]]), np.array([0.2]), i / 10)
    g.observe(np.array([1, 2]), np.array([[0.5, 0.5], [0.55, 0.5]]), np.array([0.2, 0.2]), 2.0)
    assert g.on_in(1, 2.0) and g.on_in(2, 2.0)  # 2 appeared just now: not moving together
