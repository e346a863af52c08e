"""Tracker life cycle, stepped frame by frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.evaluation.mot import gt_boxes, read_gt
from edge.tracking.reid import AppearanceReid
from edge.tracking.tracker import (
    Overlap,
    Track,
    Tracker,
    TrackerSettings,
    crossed_better,
    iou_matrix,
)
from edge.vision.detections import Detections
from edge.vision.detector import load_detector

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
    with pytest.raises(ValueError, match="untangle_margin"):
        TrackerSettings(untangle_margin=-0.1)


def moved(x: float, y: float, vx: float, vy: float, h: float = 100.0) -> Track:
    """A track at centre (x, y), height h, moving (vx, vy) a step."""
    mean = np.array([x, y, 0.4, h, vx, vy, 0.0, 0.0])
    return Track(0, mean, np.eye(8), 0.9)


@pytest.mark.parametrize(
    ("case", "a_before", "b_before", "a_now", "b_now", "crossed"),
    [
        # a walks right past b, who stands; after 10 steps each track sits on the other's path
        ("walker and stander swapped", (100, 0, 10, 0), (180, 0, 0, 0), (180, 0), (200, 0), True),
        ("walker and stander kept", (100, 0, 10, 0), (180, 0, 0, 0), (200, 0), (180, 0), False),
        # two walking towards each other, swapped as they pass
        ("passers-by swapped", (100, 0, 8, 0), (200, 0, -8, 0), (120, 0), (180, 0), True),
        ("passers-by kept", (100, 0, 8, 0), (200, 0, -8, 0), (182, 0), (118, 0), False),
        # two walking side by side: where each is now is its own path, closer than the other's
        ("side by side", (100, 0, 8, 0), (130, 0, 8, 0), (180, 0), (210, 0), False),
        # a slowed down beside b: the crossed paths fit a little better (10 px), not by the
        # margin (25 px of a 100 px person)
        ("one slowed", (100, 0, 4, 0), (160, 0, 0, 0), (155, 0), (150, 0), False),
    ],
)
def test_identities_are_given_back_where_the_motion_before_says_they_crossed(
    case, a_before, b_before, a_now, b_now, crossed
):
    """``crossed_better``: the positions now against each track's motion carried on from
    before the overlap, with the margin (0.25 of the height) against noise."""
    a, b = moved(*a_before), moved(*b_before)
    o = Overlap.begin(a, b, 0.0, 0)
    a.mean[:2], b.mean[:2] = a_now, b_now
    assert crossed_better(o, 10, 0.25) is crossed, case
    if case == "one slowed":
        assert crossed_better(o, 10, 0.0)  # what the margin is for


@pytest.fixture(scope="module")
def pets_walk_past(models_dir, eval_dir):
    """PETS09-S2L1 frames 80-130 through the real detector: person 19 walks past person 9,
    who stands still, and for a few frames the detector sees them as one box."""
    det = load_detector("yolox_nano", models_dir=models_dir)
    cap = cv2.VideoCapture(str(eval_dir / "PETS09-S2L1" / "video.mp4"))
    frames = []
    for f in range(1, 131):
        ok, img = cap.read()
        assert ok, f
        if f >= 80:
            frames.append((f, det(img)))
    cap.release()
    return frames, read_gt(eval_dir / "PETS09-S2L1")


def covering(frames, gt, settings: TrackerSettings, people: tuple[int, ...]
             ) -> dict[int, list[int]]:
    """Per person, the track id over their true box (IoU >= 0.5) on each frame, 0 for none."""
    tr = Tracker(settings)
    out: dict[int, list[int]] = {p: [] for p in people}
    for f, d in frames:
        tracks = tr.step(d, (f - 1) / 7.0)
        for p in people:
            iou = iou_matrix(gt_boxes(gt[(gt[:, 0] == f) & (gt[:, 1] == p)]),
                             tracks.xyxy.astype(float))
            out[p].append(int(tracks.tracker_id[iou[0].argmax()])
                          if iou.size and iou.max() >= 0.5 else 0)
    return out


def test_a_walker_and_a_stander_who_were_one_box_get_their_ids_back(pets_walk_past):
    """Real footage: without untangling the two tracks leave with each other's person (the
    stander's id ends on the walker); with it, each person ends with the id they began with."""
    frames, gt = pets_walk_past
    for margin, kept in ((None, False), (0.25, True)):
        ids = covering(frames, gt, TrackerSettings(untangle_margin=margin), (9, 19))
        stander, walker = ids[9], ids[19]
        first = (next(i for i in stander if i), next(i for i in walker if i))
        last = (stander[-1], walker[-1])
        assert first[0] != first[1] and 0 not in last
        assert (last == first) is kept, (margin, stander, walker)


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


def test_a_clock_stepped_back_keeps_ages_a_lost_track_still_ends_and_a_seen_one_continues():
    """A live camera's frames carry wall-clock times, which NTP may step back by an hour: a
    track lost before the step ends after its buffer, not an hour later (until then it would
    count as a person in view and take any box near where it was), and a person in view
    across the step keeps their id."""
    tr = Tracker(TrackerSettings(min_hits=2, min_lost_s=0.2, max_lost_s=0.5))
    t0 = 10_000.0
    for i in range(6):  # A walks right, B stands
        tr.step(dets([box(100 + 5 * i), box(300)]), t0 + i * DT)
    tr.step(dets([box(300)]), t0 + 6 * DT)  # A hidden ...
    back = t0 + 6 * DT - 3600.0  # ... and the clock steps back an hour
    seen, coasting = [], []
    for i in range(1, 12):  # the step itself is taken to last no time
        seen.append(ids(tr.step(dets([box(300)]), back + i * DT)))
        coasting.append(len(tr.coasting(back + i * DT)))
    # A is in view (hidden) for its buffer, 0.5 s after its last match, then not.
    assert coasting == [1] * 5 + [0] * 6
    assert all(s == [2] for s in seen)  # B, seen across the step, keeps the id
    assert [t.track_id for t in tr.tracks] == [2]  # A ended: memory stays bounded
