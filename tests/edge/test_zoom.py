"""The detector's zoom policy, stepped with plain arrays of box heights (pixels at zoom 1)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.vision.zoom import ZOOM_STEP, ZoomPolicy
from storesense.schema import DetectorZoom


def feed(policy: ZoomPolicy, height: float, frames: int, people: int = 5) -> list[float]:
    return [policy.observe(np.full(people, height)) for _ in range(frames)]


@pytest.mark.parametrize(
    ("case", "height", "zoom"),
    [
        ("people large enough stay at zoom 1", 70.0, 1.0),
        ("between small_px and target_px is no reason to start zooming", 40.0, 1.0),
        ("short people: zoom to bring the median to target_px", 32.0, 1.5),
        ("24 px people: exactly twice", 24.0, 2.0),
        ("tiny people: at most max_zoom", 8.0, 2.0),
        ("27 px: 48 / 27 = 1.78, rounded up to the next step", 27.0, 1.75 + ZOOM_STEP),
    ],
)
def test_zoom_for_people_of_one_height(case, height, zoom):
    policy = ZoomPolicy(DetectorZoom(small_px=33.0))
    assert feed(policy, height, 30)[-1] == zoom, case


def test_no_decision_before_a_full_window_or_with_few_boxes():
    policy = ZoomPolicy(DetectorZoom())
    assert set(feed(policy, 10.0, 29)) == {1.0}  # 29 frames: not a window yet
    few = ZoomPolicy(DetectorZoom())
    assert set(feed(few, 10.0, 60, people=0)) == {1.0}  # nobody in view
    assert few.observe(np.full(15, 10.0)) == 1.0  # 15 boxes in the window: too few
    assert few.observe(np.full(5, 10.0)) == 2.0  # 20: enough


def test_zoomed_in_it_holds_until_people_reach_the_target_then_returns_to_one():
    policy = ZoomPolicy(DetectorZoom())
    assert feed(policy, 20.0, 30)[-1] == 2.0
    # Zoomed in, the median moved to 40 px: between small_px and target_px a zoom-1 detector
    # would not start zooming, but the zoomed one keeps people near the target.
    assert feed(policy, 40.0, 29)[-1] == 2.0  # no change within a window of the last one
    assert feed(policy, 40.0, 1)[-1] == 1.25
    assert feed(policy, 48.0, 30)[-1] == 1.0


def test_a_changed_zoom_is_judged_on_frames_seen_at_it():
    policy = ZoomPolicy(DetectorZoom())
    feed(policy, 20.0, 30)
    assert policy.zoom == 2.0
    # One frame of big people right after the change: not a window at the new zoom yet.
    assert policy.observe(np.full(50, 100.0)) == 2.0


def test_fixed_mode_never_changes():
    policy = ZoomPolicy(DetectorZoom(mode="fixed", zoom=1.5))
    assert set(feed(policy, 5.0, 60) + feed(policy, 500.0, 60)) == {1.5}


def test_settings_are_validated_with_the_field_named():
    with pytest.raises(ValidationError, match="small_px must be <= target_px"):
        DetectorZoom(small_px=50.0, target_px=40.0)
    with pytest.raises(ValidationError, match="zoom must be <= max_zoom"):
        DetectorZoom(zoom=2.5, max_zoom=2.0)
    with pytest.raises(ValidationError, match="max_zoom"):
        DetectorZoom(max_zoom=4.0)
    with pytest.raises(ValueError, match="window_frames"):
        ZoomPolicy(window_frames=0)


# ------------------------------------------------------------------ what a closer look finds


def people(n: int) -> np.ndarray:
    """n person boxes side by side, in frame pixels."""
    return np.array([[50.0 * i, 100, 50.0 * i + 40, 200] for i in range(n)])


def probe_series(policy: ZoomPolicy, found: int, present: int, t0: float) -> float:
    """One probe's frames: zoom 1 finds ``found`` of the ``present`` people the closer look
    finds; the frames 1 s apart (the spacing of every probe after the first)."""
    zoom = policy.zoom
    for i in range(policy.probe.probe_frames):
        assert policy.probe_due(t0 + i)
        zoom = policy.observe_probe(people(found), people(present), t0 + i)
    return zoom


def test_zoom_one_missing_people_the_closer_look_finds_zooms_in_whatever_their_height():
    policy = ZoomPolicy(DetectorZoom())
    assert probe_series(policy, 5, 10, 0.0) == 2.0  # zoom 1 finds half: max_zoom
    # Tall people found (the median of those found says no zoom): the floor holds.
    assert feed(policy, 70.0, 60)[-1] == 2.0
    assert not policy.probe_due(100.0)  # not probed again before reprobe_s
    # Ten minutes on, zoom 1 finds nearly everyone: back to what the heights say.
    assert probe_series(policy, 19, 20, 600.0) == 1.0


def test_zoom_one_finding_nearly_everyone_leaves_the_zoom_to_the_heights():
    policy = ZoomPolicy(DetectorZoom())
    assert probe_series(policy, 9, 10, 0.0) == 1.0
    assert feed(policy, 20.0, 30)[-1] == 2.0  # short people: the heights' rule zooms


def test_no_probe_in_fixed_mode_or_without_a_larger_zoom():
    assert not ZoomPolicy(DetectorZoom(mode="fixed", zoom=1.5)).probe_due(0.0)
    assert not ZoomPolicy(DetectorZoom(max_zoom=1.0)).probe_due(0.0)
