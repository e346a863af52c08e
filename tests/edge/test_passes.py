"""Passes and unique visitors: the re-entry rule on plain embeddings, and the adapter that
reads looks from the tracker's re-identification."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from edge.analytics.passes import PassCounter, ReentryMemory, TrackerLooks
from edge.tracking.reid import AppearanceReid
from edge.tracking.tracker import Tracker
from edge.vision.detections import Detections


def look(*v: float) -> npt.NDArray[np.float32]:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


ANNA, BEN, CARL = look(1, 0, 0, 0), look(0, 1, 0, 0), look(0, 0, 1, 0)
ANNA_AGAIN = look(1, 0.2, 0, 0)  # cosine distance ~0.02 from ANNA
ANNA_OR_BEN = look(1, 1, 0, 0)  # halfway: as close to one as to the other


@pytest.mark.parametrize(("case", "ins", "unique"), [
    ("three different people", [(0, ANNA), (10, BEN), (20, CARL)], [True, True, True]),
    ("Anna comes back after five minutes", [(0, ANNA), (300, ANNA_AGAIN)], [True, False]),
    ("Anna comes back after the window (30 min)", [(0, ANNA), (1801, ANNA_AGAIN)],
     [True, True]),
    ("no look taken: counted unique", [(0, ANNA), (5, None)], [True, True]),
    ("ambiguous between two people: counted unique",
     [(0, ANNA), (1, BEN), (60, ANNA_OR_BEN)], [True, True, True]),
    ("Anna three times", [(0, ANNA), (60, ANNA_AGAIN), (120, ANNA)], [True, False, False]),
])
def test_reentry_rule(case: str, ins: list[tuple[float, npt.NDArray[np.float32] | None]],
                      unique: list[bool]) -> None:
    m = ReentryMemory(window_s=1800)
    assert [m.on_in(v, t) for t, v in ins] == unique, case


def test_looks_are_forgotten_after_the_window_and_bounded() -> None:
    m = ReentryMemory(window_s=60, max_looks=3)
    for i in range(5):
        m.on_in(look(1, i, 0, 0), float(i))
    assert len(m) == 3  # the oldest dropped beyond max_looks
    m.forget_before(63.5)
    assert len(m) == 1  # looks of t = 2, 3 are older than 60 s at 63.5
    m.forget_before(200)
    assert len(m) == 0


def test_a_clock_stepped_back_keeps_the_window() -> None:
    # A live camera's times are the wall clock's; NTP steps it back an hour after Anna left.
    m = ReentryMemory(window_s=1800.0)
    assert m.on_in(ANNA, 10_000.0)
    for t in (6_410.0, 6_420.0):  # frames after the step
        m.forget_before(t)
    assert not m.on_in(ANNA_AGAIN, 6_430.0)  # 30 s after she came in: she is back
    m.forget_before(6_410.0 + 1800.5)
    assert len(m) == 1  # her first look forgotten a window after it was taken (the step
    # itself counted as no time), the one of her return kept


def test_window_zero_turns_reentry_off() -> None:
    m = ReentryMemory(window_s=0)
    assert m.on_in(ANNA, 0) and m.on_in(ANNA, 1)
    assert len(m) == 0  # nothing kept


def colour_embed(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A stand-in appearance model: the mean colour of each crop, normalised."""
    v = crops.reshape(len(crops), -1, 3).mean(axis=1).astype(np.float32) + 1e-3
    out: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_tracker_looks_read_what_the_identity_stage_keeps() -> None:
    """Through a real Tracker with AppearanceReid: a red person crosses in, goes, and a red
    person crosses in again as a new track (a re-entry); a blue one is a new visitor."""
    tracker = Tracker(reid=AppearanceReid(colour_embed))
    looks = TrackerLooks.of(tracker)
    assert looks is not None
    memory = ReentryMemory(window_s=1800)
    image = np.zeros((400, 400, 3), np.uint8)

    def person(colour: tuple[int, int, int], t0: float) -> tuple[int, bool]:
        """A person seen for 3 s, who crosses in at the end of it, then goes."""
        image[:] = 0
        image[100:300, 150:230] = colour
        tid = -1
        for i in range(6):
            tracks = tracker.step(Detections.from_arrays([[150, 100, 230, 300]], [0.9]),
                                  t0 + i * 0.6, image)
            looks.refresh(tracker.tracks)
            if tracks.tracker_id is not None and len(tracks):
                tid = int(tracks.tracker_id[0])
        # the crossing is reported a frame after the person was last seen, as a settled one is
        tracker.step(Detections.from_arrays(np.zeros((0, 4)), []), t0 + 3.6, image)
        unique = memory.on_in(looks.look(tid), t0 + 3.6)
        looks.refresh(tracker.tracks)
        for i in range(40):  # gone: the tracker ends the track
            tracker.step(Detections.from_arrays(np.zeros((0, 4)), []), t0 + 4 + i, image)
            looks.refresh(tracker.tracks)
        assert looks.look(tid) is None  # forgotten with the track
        return tid, unique

    first, unique_1 = person((0, 0, 200), t0=0.0)
    second, unique_2 = person((0, 0, 200), t0=100.0)
    assert second != first  # a new track: the tracker gave the first one up
    _, unique_3 = person((200, 0, 0), t0=200.0)
    assert [unique_1, unique_2, unique_3] == [True, False, True]
    assert looks.embedded == 3


def test_no_reid_no_adapter() -> None:
    assert TrackerLooks.of(Tracker()) is None


def test_the_same_track_in_twice_is_a_reentry_without_a_look() -> None:
    counter = PassCounter(ReentryMemory(window_s=1800))
    asked: list[int] = []

    def look_of(tid: int) -> Callable[[], npt.NDArray[np.float32] | None]:
        def look() -> npt.NDArray[np.float32] | None:
            asked.append(tid)
            return None
        return look

    assert counter.on_in(1, look_of(1), 0.0) is True
    assert counter.on_in(2, look_of(2), 1.0) is True
    assert counter.on_in(1, look_of(1), 30.0) is False  # out and back in, same identity
    assert asked == [1, 2]  # the second crossing needed no look
    assert counter.end(1) is True and counter.end(1) is False  # one vote, then forgotten
    assert counter.end(3) is False  # a track that never crossed in does not vote
    assert counter.on_in(4, look_of(4), 40.0) is True
    counter.rename(4, 5)  # identity repair: the person is still the one who came in
    assert counter.on_in(5, look_of(5), 50.0) is False and counter.end(5) is True


def test_someone_still_in_view_is_not_coming_back() -> None:
    """A stranger who looks like Anna crosses in while Anna (track 1) is still in view: not a
    re-entry. The same look once Anna's track is gone is one."""
    for in_view, unique in ((frozenset({1, 2}), True), (frozenset({2}), False)):
        m = ReentryMemory(window_s=1800)
        assert m.on_in(ANNA, 0.0, track_id=1)
        assert m.on_in(ANNA_AGAIN, 5.0, track_id=2, in_view=in_view) is unique
