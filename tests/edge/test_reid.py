"""Re-identification decisions, stepped frame by frame with the real appearance model.

The people are real: crops of MOT17-09's ground-truth persons (a person seen at two moments
looks a little different each time). The walks are synthetic, so each table row says exactly
what happened: a person hidden and found again, a stranger appearing where someone was lost,
two people crossing paths. Detections are given as boxes: this is the tracker's test, not the
detector's.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.tracking.reid import AppearanceReid
from edge.tracking.tracker import Tracker
from edge.vision.appearance import AppearanceModel, load_appearance
from edge.vision.detections import Detections

DT = 0.1
W, H = 1280, 720
PW, PH = 80, 200  # a person's box on the synthetic canvas
Image = npt.NDArray[np.uint8]
# (MOT17-09 gt id, frame): fully visible and over 250 px tall there.
LOOKS = {"a": (1, 60), "a_later": (1, 120), "b": (19, 60), "stranger": (8, 240)}


@pytest.fixture(scope="module")
def model(models_dir: Path) -> AppearanceModel:
    return load_appearance(models_dir=models_dir)


@pytest.fixture(scope="module")
def looks(eval_dir: Path) -> dict[str, Image]:
    seq = eval_dir / "MOT17-09"
    gt = np.loadtxt(seq / "gt.txt", delimiter=",")
    cap = cv2.VideoCapture(str(seq / "video.mp4"))
    frames: dict[int, Image] = {}
    for f in range(1, max(f for _, f in LOOKS.values()) + 1):
        ok, img = cap.read()
        assert ok
        frames[f] = img
    cap.release()
    out = {}
    for name, (pid, f) in LOOKS.items():
        x, y, w, h = gt[(gt[:, 0] == f) & (gt[:, 1] == pid)][0, 2:6].astype(int)
        out[name] = cv2.resize(frames[f][y : y + h, x : x + w], (PW, PH))
    return out


def scene(people: list[tuple[Image, float]]) -> tuple[Image, list[list[float]]]:
    """A grey frame with each (look, x) pasted in order (later ones in front) at y = 300."""
    img = np.full((H, W, 3), 110, np.uint8)
    boxes = []
    for look, x in people:
        xi = round(x)
        img[300 : 300 + PH, xi : xi + PW] = look
        boxes.append([float(xi), 300.0, float(xi + PW), 300.0 + PH])
    return img, boxes


def step(tr: Tracker, t: float, img: Image, boxes: list[list[float]]) -> list[int]:
    d = Detections.from_arrays(boxes, [0.9] * len(boxes)) if boxes else Detections.empty()
    out = tr.step(d, t, img)
    assert out.tracker_id is not None
    return out.tracker_id.tolist()


def hidden_walk(
    tr: Tracker, looks: dict[str, Image], again: str, *more: tuple[str, float], off: float = 15
) -> tuple[int, list[int]]:
    """'a' walks right 8 px a frame, is hidden 1.5 s, then ``again`` appears ``off`` px from
    where 'a' would be (and each of ``more``, a look and its x offset from there). -> (a's id
    before, the ids after)."""
    first = []
    for i in range(10):
        img, boxes = scene([(looks["a"], 200 + 8 * i)])
        first = step(tr, i * DT, img, boxes)
    for i in range(10, 25):
        step(tr, i * DT, scene([])[0], [])
    after: list[int] = []
    for i in range(25, 31):
        at = 200 + 8 * i + off
        img, boxes = scene([(looks[again], at), *((looks[k], at + dx) for k, dx in more)])
        after = step(tr, i * DT, img, boxes)
    return first[0], after


@pytest.mark.parametrize(
    ("case", "again", "same_id"),
    [
        ("hidden 1.5 s and found again: the identity survives", "a_later", True),
        ("a stranger where the lost person would be: a new person", "stranger", False),
    ],
)
def test_a_lost_track_is_revived_by_its_own_look_only(
    model: AppearanceModel, looks: dict[str, Image], case: str, again: str, same_id: bool
) -> None:
    tr = Tracker(reid=AppearanceReid(model))
    before, after = hidden_walk(tr, looks, again)
    assert (after == [before]) is same_id, case
    assert tr.revived == int(same_id)


def test_without_reidentification_the_hidden_person_gets_a_new_id(
    looks: dict[str, Image],
) -> None:
    before, after = hidden_walk(Tracker(), looks, "a_later")
    assert after and after != [before]  # what the table above repairs


def test_two_people_crossing_paths_do_not_swap(
    model: AppearanceModel, looks: dict[str, Image]
) -> None:
    """'a' walks right, 'b' walks left in front of 'a'; while they overlap only 'b' is
    detected. Afterwards the right-walking box carries a's id."""
    tr = Tracker(reid=AppearanceReid(model))
    ids_at_start: list[int] = []
    for i in range(40):
        xa, xb = 300 + 12 * i, 780 - 12 * i
        img, boxes = scene([(looks["a"], xa), (looks["b"], xb)])
        if abs(xa - xb) < PW:  # overlapping: a is behind b and not detected
            boxes = boxes[1:]
        ids = step(tr, i * DT, img, boxes)
        if i == 3:
            ids_at_start = ids
        if i == 39:
            assert len(ids) == 2
            live = {t.track_id: t for t in tr.tracks if not t.lost}
            right_walker = max(live.values(), key=lambda t: t.mean[0])
            assert right_walker.track_id == ids_at_start[0]  # 'a' was created first


def test_only_clear_views_are_kept_and_they_die_with_the_track(
    model: AppearanceModel, looks: dict[str, Image]
) -> None:
    reid = AppearanceReid(model)
    tr = Tracker(reid=reid)
    embedded_before = model.crops_embedded
    for i in range(6):  # two people overlapping the whole time: no clear view of either
        img, boxes = scene([(looks["a"], 400 + 5 * i), (looks["b"], 440 + 5 * i)])
        step(tr, i * DT, img, boxes)
    assert all(t.crop is None for t in tr.tracks)
    for i in range(6, 12):  # apart: each is seen clearly
        img, boxes = scene([(looks["a"], 200 + 5 * i), (looks["b"], 700 + 5 * i)])
        step(tr, i * DT, img, boxes)
    confirmed = sorted(t.track_id for t in tr.tracks if t.hits >= 2)
    assert len(confirmed) == 2 and all(t.crop is not None for t in tr.tracks if t.hits >= 2)
    ended = []
    for i in range(12, 12 + int(reid.max_age_s / DT) + 5):
        step(tr, i * DT, scene([])[0], [])
        ended += tr.ended
    assert tr.tracks == [] and sorted(ended) == confirmed
    # nobody new appeared near a lost track with a clear view: nothing was embedded
    assert model.crops_embedded == embedded_before


def test_an_ambiguous_revival_is_refused(model: AppearanceModel, looks: dict[str, Image]) -> None:
    """Two boxes that look the same as the lost person, both inside the gate: neither is
    taken for them (a crowd of look-alikes must not hand out a lost identity)."""
    tr = Tracker(reid=AppearanceReid(model))
    before, after = hidden_walk(tr, looks, "a_later", ("a_later", 160.0))
    assert len(after) == 2 and before not in after and tr.revived == 0


@pytest.mark.parametrize(
    ("case", "off", "more", "same_id"),
    [
        ("found again alone where their walk leads: the identity survives", 15.0, (), True),
        ("two boxes where the walk leads: neither is taken for them", 15.0,
         (("b", 120.0),), False),
        ("one box far behind where the walk leads: a new person", -400.0, (), False),
    ],
)
def test_people_too_small_for_a_look_are_revived_by_unambiguous_motion_only(
    model: AppearanceModel, looks: dict[str, Image], case: str, off: float,
    more: tuple[tuple[str, float], ...], same_id: bool,
) -> None:
    reid = AppearanceReid(model, min_crop_px=PH + 1)  # every person here is PH px tall
    embedded = model.crops_embedded
    tr = Tracker(reid=reid)
    before, after = hidden_walk(tr, looks, "a_later", *more, off=off)
    assert after and (before in after) is same_id, case
    assert tr.revived == int(same_id)
    assert model.crops_embedded == embedded  # no look was judged: the boxes are too small



def meet_and_part(tr: Tracker, looks: dict[str, Image], stand: int) -> tuple[int, dict[int, int]]:
    """'a' walks right from the left, 'b' left from the right; they meet, stand ``stand``
    frames seen as one box (the detector cannot tell them apart), then walk on their ways.
    -> (the ids before they met, {id: x} of the live tracks at the end)."""
    walk = []
    xa, xb = 300.0, 900.0
    while xa < 560:
        walk.append((xa, xb))
        xa, xb = xa + 12, xb - 12
    walk += [(xa, xb)] * stand + [(xa + 12 * k, xb - 12 * k) for k in range(1, 25)]
    before: dict[int, int] = {}
    for i, (xa, xb) in enumerate(walk):
        img, boxes = scene([(looks["a"], xa), (looks["b"], xb)])
        if abs(xa - xb) < PW:
            boxes = [[min(xa, xb), 300.0, max(xa, xb) + PW, 300.0 + PH]]
        step(tr, i * DT, img, boxes)
        if i == 3:
            before = {t.track_id: round(t.mean[0]) for t in tr.tracks}
    return before, {t.track_id: round(t.mean[0]) for t in tr.tracks if not t.lost}


@pytest.mark.parametrize("stand", [10, 20])
def test_people_who_meet_and_part_keep_their_ids(
    model: AppearanceModel, looks: dict[str, Image], stand: int
) -> None:
    """Standing together as one box, one of the two tracks is lost; when they part, its
    person comes back by their look, on the side they were walking to."""
    before, after = meet_and_part(Tracker(reid=AppearanceReid(model)), looks, stand)
    a_id, b_id = sorted(before, key=before.__getitem__)  # a started on the left
    assert set(after) == {a_id, b_id} and after[a_id] > after[b_id]
    before, after = meet_and_part(Tracker(), looks, stand)
    assert set(after) != set(before)  # what re-identification repairs
