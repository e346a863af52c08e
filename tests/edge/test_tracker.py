"""Tracker life cycle, stepped frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from edge.tracking.reid import AppearanceReid
from edge.tracking.tracker import Tracker, TrackerSettings, iou_matrix
from edge.vision.detections import Detections

DT = 0.1


def box(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [x, y, x + w, y + h]


def dets(boxes: list[list[float]], scores: list[float] | None = None) -> Detections:
    return Detections.from_arrays(boxes, scores or [0.9] * len(boxes))


def ids(tracks: Detections) -> list[int]:
    assert tracks.tracker_id is not None
    return tracks.tracker_id.tolist()


def test_track_is_confirmed_after_min_hits_then_expires():
    tr = Tracker(TrackerSettings(min_hits=2, max_lost_s=0.5))
    assert ids(tr.step(dets([box(100)]), 0 * DT)) == []  # tentative
    assert ids(tr.step(dets([box(105)]), 1 * DT)) == [1]  # confirmed
    assert ids(tr.step(dets([box(110)]), 2 * DT)) == [1]
    assert ids(tr.step(Detections.empty(), 3 * DT)) == []  # lost: not reported
    assert len(tr.tracks) == 1  # but remembered
    assert ids(tr.step(dets([box(120)]), 4 * DT)) == [1]  # found again, same id
    for i in range(5, 12):
        tr.step(Detections.empty(), i * DT)
    assert tr.tracks == []  # expired: memory is bounded


def test_tentative_track_without_second_match_is_dropped():
    tr = Tracker()
    tr.step(dets([box(100)]), 0.0)
    tr.step(Detections.empty(), DT)
    assert tr.tracks == []


def test_low_score_box_keeps_a_live_track():
    tr = Tracker()
    for i in range(3):
        tr.step(dets([box(100 + 5 * i)]), i * DT)
    out = tr.step(dets([box(115)], [0.2]), 3 * DT)  # half hidden: low confidence
    assert ids(out) == [1]


def test_low_score_box_confirms_a_tentative_track():
    # At ~10 detections a second the second sighting of someone walking into a crowd is
    # often already half hidden; it still confirms the track (it cannot start one).
    tr = Tracker()
    tr.step(dets([box(100)]), 0.0)
    assert ids(tr.step(dets([box(104)], [0.3]), DT)) == [1]


def test_a_briefly_seen_track_is_forgotten_sooner_than_an_established_one():
    # A track seen for a moment (often a duplicate box on someone already tracked) must not
    # drift blind for the whole lost buffer and then take over a stranger it runs into.
    s = TrackerSettings(min_lost_s=0.3, max_lost_s=1.0)
    young, old = Tracker(s), Tracker(s)
    young.step(dets([box(100)]), 0.0)
    young.step(dets([box(100)]), DT)
    for i in range(20):
        old.step(dets([box(100)]), i * DT)
    for i in range(1, 6):  # 0.5 s unseen
        young.step(Detections.empty(), DT + i * DT)
        old.step(Detections.empty(), 19 * DT + i * DT)
    assert young.tracks == []
    assert [t.track_id for t in old.tracks] == [1]


def test_low_score_box_does_not_start_a_track():
    tr = Tracker()
    for i in range(4):
        tr.step(dets([box(100)], [0.3]), i * DT)
    assert tr.tracks == []


def test_two_people_passing_keep_their_ids():
    tr = Tracker()
    seen = set()
    for i in range(30):
        a, b = 100 + 8 * i, 340 - 8 * i  # walk towards each other at different heights
        out = tr.step(dets([box(a, 100), box(b, 150)]), i * DT)
        if len(out) == 2:
            order = np.argsort(out.xyxy[:, 1])
            seen.add(tuple(np.asarray(ids(out))[order].tolist()))
    assert seen == {(1, 2)}


def test_prediction_between_detections_follows_motion():
    tr = Tracker()
    for i in range(12):
        tr.step(dets([box(100 + 10 * i)]), i * DT)
    out = tr.step(None, 12 * DT)  # no detector this frame: the filter's velocity carries on
    assert out.xyxy[0, 0] == pytest.approx(220, abs=3)


def test_caller_detections_are_not_mutated():
    d = dets([box(100)])
    before = (d.xyxy.copy(), d.confidence.copy())
    tr = Tracker()
    tr.step(d, 0.0)
    tr.step(d, DT)
    assert d.tracker_id is None
    assert (d.xyxy == before[0]).all() and (d.confidence == before[1]).all()


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 1 / 3, 0.0])


def test_settings_are_range_checked():
    with pytest.raises(ValueError, match="min_lost_s"):
        TrackerSettings(min_lost_s=2.0, max_lost_s=1.0)
    with pytest.raises(ValueError, match="min_hits"):
        TrackerSettings(min_hits=0)


def test_a_person_hidden_for_a_moment_is_still_in_view_until_the_buffer_runs_out():
    """``coasting``: a confirmed track lost within its IoU buffer is a person still there
    (behind someone, usually), at its predicted place; a tentative one is not, nor one lost
    longer than the buffer (min(max_lost_s, time it was followed), at least min_lost_s),
    though re-identification keeps it for max_age_s to recognise it."""
    look = np.zeros(8, np.float32)
    look[0] = 1.0
    reid = AppearanceReid(embed=lambda crops: np.tile(look, (len(crops), 1)), max_age_s=3.0)
    tr = Tracker(TrackerSettings(min_hits=2, min_lost_s=0.2, max_lost_s=0.5), reid=reid)
    frame = np.zeros((480, 640, 3), np.uint8)
    for i in range(6):  # A walks right for 0.5 s, B stands; C appears at the end only
        tr.step(dets([box(100 + 5 * i), box(300)] + ([box(500)] if i == 5 else [])), i * DT,
                frame)
    assert len(tr.coasting(5 * DT)) == 0  # everyone seen
    tr.step(dets([box(300)]), 6 * DT, frame)  # A and C unseen
    hidden = tr.coasting(6 * DT)
    assert len(hidden) == 1  # A; C was never confirmed
    assert hidden[0][0] > 100 + 5 * 5  # where A's motion puts it, not where it was last seen
    for i in range(7, 20):
        tr.step(dets([box(300)]), i * DT, frame)
        assert len(tr.coasting(i * DT)) == (1 if (i - 5) * DT <= 0.5 + 1e-9 else 0), i
    assert len(tr.tracks) == 2  # A is still kept, for re-identification, but not in view
