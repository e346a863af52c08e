"""eval's scores on hand-made events and truths: one line, and several pooled."""

from __future__ import annotations

import pytest

from edge.analytics.counting import CrossingEvent
from edge.evaluation.analyze import RunResult
from edge.evaluation.evaluate import line_scores, match_events, scores, tally
from edge.evaluation.mot import SeqInfo, TrueCrossing
from storesense.schema import LineSpec

FPS = 10.0


def truth(*rows: tuple[int, str]) -> list[TrueCrossing]:
    return [TrueCrossing(frame, i, direction) for i, (frame, direction) in enumerate(rows)]


@pytest.mark.parametrize(
    ("case", "pred", "true", "matched"),
    [
        ("same frame", [(10, "in")], truth((10, "in")), 1),
        ("within one second", [(19, "in")], truth((10, "in")), 1),
        ("just past one second", [(21, "in")], truth((10, "in")), 0),
        ("wrong direction", [(10, "out")], truth((10, "in")), 0),
        ("one-to-one: two events cannot both take one truth", [(10, "in"), (11, "in")],
         truth((10, "in")), 1),
        ("Hungarian, not greedy", [(15, "in"), (24, "in")], truth((14, "in"), (6, "in")), 2),
    ],
)
def test_match_events(case, pred, true, matched):
    assert match_events(pred, true, FPS) == matched, case


def test_scores_follow_the_issue_definitions():
    pred = [(10, "in"), (50, "in"), (80, "out")]
    true = truth((10, "in"), (30, "in"), (60, "out"), (90, "out"))
    s = scores(tally(pred, true, FPS))
    assert s["true"] == {"in": 2, "out": 2} and s["predicted"] == {"in": 2, "out": 1}
    assert s["count_accuracy"] == 0.75  # 1 - (|2 - 2| + |1 - 2|) / 4
    assert (s["precision"], s["recall"]) == (round(2 / 3, 4), 0.5)  # frames 10 and 80 match
    assert s["f1"] == round(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 4)
    assert scores(tally([], [], FPS))["f1"] == 1.0


def test_several_lines_are_scored_each_and_pooled():
    import numpy as np

    info = SeqInfo("s", FPS, 40, 100, 100, None)  # type: ignore[arg-type]
    # one person walking left to right across the whole frame: crosses x=0.3 and x=0.7 once
    gt = np.array([[f, 1, 2.5 * f - 10, 10, 20, 40] for f in range(1, 41)], float)
    a = LineSpec(name="a", points=(0.3, 0, 0.3, 1))
    b = LineSpec(name="b", points=(0.7, 0, 0.7, 1))
    res = RunResult(events=[(17, CrossingEvent("a", 1, "out", 1.6))])  # b's crossing missed
    one = line_scores(res, [a], gt, info)
    assert one["line"] == [0.3, 0, 0.3, 1] and one["count_accuracy"] == 1.0
    both = line_scores(res, [a, b], gt, info)
    assert [p["count_accuracy"] for p in both["per_line"]] == [1.0, 0.0]
    assert both["true"] == {"in": 0, "out": 2} and both["predicted"] == {"in": 0, "out": 1}
    assert (both["count_accuracy"], both["precision"], both["recall"]) == (0.5, 1.0, 0.5)


def test_pooled_count_errors_do_not_cancel_between_lines():
    import numpy as np

    info = SeqInfo("s", FPS, 40, 100, 100, None)  # type: ignore[arg-type]
    gt = np.array([[f, 1, 2.5 * f - 10, 10, 20, 40] for f in range(1, 41)], float)
    a = LineSpec(name="a", points=(0.3, 0, 0.3, 1))
    b = LineSpec(name="b", points=(0.7, 0, 0.7, 1))
    # a counted twice, b missed: the totals (2 of 2) agree, the counts of each line do not
    twice = [(17, CrossingEvent("a", 1, "out", 1.6)), (18, CrossingEvent("a", 2, "out", 1.7))]
    both = line_scores(RunResult(events=twice), [a, b], gt, info)
    assert both["predicted"] == both["true"] == {"in": 0, "out": 2}
    assert both["count_accuracy"] == 0.0  # 1 - (1 + 1) / 2
