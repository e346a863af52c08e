"""What each counting error is, on hand-made tracks: one table row per kind."""

from __future__ import annotations

import pytest

from edge.analytics.counting import CrossingEvent
from edge.evaluation.error_kinds import EXTRA, MISSED, line_error_kinds, pooled_kinds
from edge.evaluation.mot import TrueCrossing

FPS = 10.0  # WINDOW_S = 2 s is 20 frames here


def covered(*spans: tuple[int, int, int, int]) -> dict[int, dict[int, int]]:
    """(person, first frame, last frame, track) -> person -> frame -> track."""
    out: dict[int, dict[int, int]] = {}
    for pid, a, b, tid in spans:
        out.setdefault(pid, {}).update({f: tid for f in range(a, b + 1)})
    return out


def ev(frame: int, track: int, direction: str = "in") -> tuple[int, CrossingEvent]:
    return frame, CrossingEvent("l", track, direction, frame / FPS)  # type: ignore[arg-type]


PERSON_1_IN_AT_100 = [TrueCrossing(100, 1, "in")]


@pytest.mark.parametrize(
    ("case", "pred", "tracks", "kind"),
    [
        ("nobody tracked the person", [], covered(), "untracked"),
        ("tracked only before the line", [], covered((1, 60, 99, 7)), "one side"),
        ("tracked only after it", [], covered((1, 100, 140, 7)), "one side"),
        ("one track to the line, another after", [], covered((1, 60, 99, 7), (1, 100, 140, 8)),
         "id change"),
        ("one track across, nothing reported", [], covered((1, 60, 140, 7)), "uncounted"),
        ("one track across, other direction only", [ev(101, 7, "out")],
         covered((1, 60, 140, 7)), "uncounted"),
        ("one track across, reported 3 s late", [ev(130, 7)], covered((1, 60, 140, 7)),
         "elsewhere"),
        ("a track 3 s from the line is not looked at", [], covered((1, 60, 75, 7)), "untracked"),
    ],
)
def test_a_missed_crossing_is_named_by_what_tracked_the_person(case, pred, tracks, kind):
    kinds = line_error_kinds(pred, PERSON_1_IN_AT_100, tracks, FPS)
    want = {k: int(k == kind) for k in MISSED}
    assert kinds["missed"] == want, case


@pytest.mark.parametrize(
    ("case", "pred", "tracks", "kind"),
    [
        ("a track on no true person", [ev(300, 9)], covered(), "nobody"),
        ("a track that went from person 2 to person 3", [ev(300, 9)],
         covered((2, 280, 295, 9), (3, 296, 320, 9)), "swap"),
        ("a track on person 2, who never crosses", [ev(300, 9)], covered((2, 280, 320, 9)),
         "no cross"),
        ("person 1 crosses, but at 100, not 300", [ev(300, 9)], covered((1, 280, 320, 9)),
         "again"),
    ],
)
def test_an_extra_crossing_is_named_by_whom_its_track_covered(case, pred, tracks, kind):
    matched = ev(100, 5)  # person 1's true crossing is reported, by another track
    kinds = line_error_kinds([matched, *pred], PERSON_1_IN_AT_100, tracks, FPS)
    assert kinds["missed"] == dict.fromkeys(MISSED, 0), case
    assert kinds["extra"] == {k: int(k == kind) for k in EXTRA}, case


def test_two_crossing_together_counted_once_is_a_miss_elsewhere():
    truth = [TrueCrossing(100, 1, "in"), TrueCrossing(101, 2, "in")]
    tracks = covered((1, 60, 140, 7), (2, 60, 140, 8))
    kinds = line_error_kinds([ev(100, 8)], truth, tracks, FPS)  # track 8 was matched to person 1
    assert kinds["missed"]["elsewhere"] == 1 and sum(kinds["missed"].values()) == 1
    assert sum(kinds["extra"].values()) == 0


def test_kinds_of_several_lines_add_up():
    a = line_error_kinds([], PERSON_1_IN_AT_100, covered(), FPS)
    b = line_error_kinds([ev(300, 9)], PERSON_1_IN_AT_100, covered((1, 60, 140, 7)), FPS)
    total = pooled_kinds([a, b])
    assert total["missed"]["untracked"] == 1 and total["missed"]["uncounted"] == 1
    assert total["extra"]["nobody"] == 1
