"""The detector profile, chosen from what both detectors find on sampled frames."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.profile import ProfilePolicy, cheap_recall


def people(n: int, x0: float = 0.0) -> np.ndarray:
    """n person boxes side by side, 40 x 100 px."""
    return np.array([[x0 + 50 * i, 100, x0 + 50 * i + 40, 200] for i in range(n)], float)


def probe(policy: ProfilePolicy, found: int, present: int, t: float) -> str:
    return policy.observe(people(found), people(present), t)


def test_recall_counts_crowd_people_the_cheap_pass_overlaps():
    assert cheap_recall(people(3), people(4)) == (3, 4)
    assert cheap_recall(people(3, x0=25), people(4)) == (0, 4)  # IoU 0.23: not found
    assert cheap_recall(np.zeros((0, 4)), people(2)) == (0, 2)
    assert cheap_recall(people(2), np.zeros((0, 4))) == (0, 0)


@pytest.mark.parametrize(
    ("case", "found", "present", "after"),
    [
        ("the cheap detector finds everyone: sparse", 10, 10, "sparse"),
        ("it finds 7 in 10: crowd", 7, 10, "crowd"),
        ("it finds 8 in 10: still sparse (fewer than 0.8 switches)", 8, 10, "sparse"),
        ("only one person in view: too little to judge", 0, 1, "sparse"),
    ],
)
def test_first_probe_decides_after_its_frames(case, found, present, after):
    p = ProfilePolicy()
    for i in range(p.probe_frames - 1):
        assert probe(p, found, present, 0.1 * i) == "sparse", case
    assert probe(p, found, present, 0.1 * p.probe_frames) == after, case


def test_the_first_probe_runs_at_once_later_ones_spaced_and_every_reprobe_s():
    p = ProfilePolicy(reprobe_s=600.0, probe_spacing_s=1.0)
    times = [t for t in np.arange(0, 1300, 0.1) if p.probe_due(t) and probe(p, 5, 10, t)]
    first = times[: p.probe_frames]
    assert first == pytest.approx([0.1 * i for i in range(p.probe_frames)])
    second = times[p.probe_frames : 2 * p.probe_frames]
    assert second[0] == pytest.approx(600.0)
    assert np.diff(second) == pytest.approx([1.0] * (p.probe_frames - 1), abs=0.11)
    assert p.profile == "crowd"


def test_a_probe_that_saw_too_few_people_is_retried_within_retry_s_not_reprobe_s():
    # A node started in an empty store: its first probe sees nobody, the crowd comes later.
    p = ProfilePolicy(reprobe_s=600.0, retry_s=60.0, probe_spacing_s=1.0)
    crowd_from = 200.0
    decided_at = None
    for t in np.arange(0, 1300, 0.1):
        if p.probe_due(t):
            found, present = (5, 10) if t >= crowd_from else (0, 0)
            if probe(p, found, present, t) == "crowd":
                decided_at = t
                break
    assert decided_at is not None, "the crowd was never seen"
    assert crowd_from <= decided_at <= crowd_from + 60.0 + p.probe_frames * 1.0
    # Once decided, the next probe waits reprobe_s from that series' start again.
    later = [t for t in np.arange(decided_at + 0.1, decided_at + 700, 0.1) if p.probe_due(t)]
    assert later and later[0] >= decided_at + 600.0 - p.probe_frames * 1.0


def test_crowd_returns_to_sparse_only_well_above_the_switch():
    p = ProfilePolicy()
    for i in range(p.probe_frames):
        probe(p, 5, 10, 0.1 * i)
    assert p.profile == "crowd"
    for i in range(p.probe_frames):  # 0.85: above the switch, below the way back
        probe(p, 17, 20, 600 + i)
    assert p.profile == "crowd" and p.recall == pytest.approx(0.85)
    for i in range(p.probe_frames):
        probe(p, 19, 20, 1200 + i)
    assert p.profile == "sparse"


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="min_recall"):
        ProfilePolicy(min_recall=0.95, back_recall=0.9)
    with pytest.raises(ValueError, match="retry_s"):
        ProfilePolicy(retry_s=700.0, reprobe_s=600.0)


def test_a_clock_stepped_back_an_hour_does_not_put_off_the_next_probe():
    p = ProfilePolicy(reprobe_s=600.0, probe_spacing_s=1.0)
    t0 = 10_000.0
    for i in range(p.probe_frames):
        assert p.probe_due(t0 + 0.1 * i)
        probe(p, 5, 10, t0 + 0.1 * i)
    assert p.profile == "crowd"
    back = t0 + 0.1 * p.probe_frames - 3600.0  # NTP steps the wall clock back an hour
    due = [t for t in np.arange(back, back + 700, 0.1) if p.probe_due(t)]
    assert due, "no probe within 700 s of the step"
    assert due[0] == pytest.approx(back + 600.0 - 0.1 * p.probe_frames, abs=0.11)
