"""One owner of track lifetimes, and what every analytic sees through it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pipeline import Analytics
from edge.tracking.track_life import TrackLife
from storesense.schema import AnalyticsConfig, LineSpec, ZoneSpec


def test_started_once_ended_by_the_tracker_or_by_the_timeout():
    life = TrackLife(timeout_s=1.0)
    assert life.update([1, 2], 0.0) == ([1, 2], [])
    assert life.update([1, 2], 0.1) == ([], [])
    assert life.update([1], 0.2, ended=[2]) == ([], [2])  # the tracker gave up on 2
    assert life.update([], 1.0) == ([], [])
    assert life.update([], 1.3) == ([], [1])  # unseen past the timeout
    assert life.update([3], 1.4, ended=[99]) == ([3], [])  # an id it never saw ends nothing
    assert life.finish() == [3] and len(life) == 0


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout_s"):
        TrackLife(timeout_s=0.0)


def test_every_analytic_settles_a_track_at_the_frame_it_ends():
    config = AnalyticsConfig(
        lines=[LineSpec(name="door", points=(0.5, 0.0, 0.5, 1.0))],
        zones=[ZoneSpec(name="shelf", polygon=[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)])],
    )
    config = config.model_copy(update={"counting": config.counting.model_copy(
        update={"min_frames_on_side": 5})})
    a = Analytics(config, track_timeout_s=100.0)  # only the tracker's word ends it here
    for i, x in enumerate([0.3, 0.4, 0.6, 0.62, 0.64]):
        out = a.update(np.array([7]), np.array([[x, 0.5]]), i * 0.1)
        assert out.crossings == [] and out.finished_tracks == []
    out = a.update(np.zeros(0, np.int64), np.zeros((0, 2)), 0.5)
    assert out.finished_tracks == []  # hidden, not ended: nothing settles yet
    out = a.update(np.zeros(0, np.int64), np.zeros((0, 2)), 3.0, ended=[7])
    assert out.finished_tracks == [7]
    assert [(c.track_id, c.direction) for c in out.crossings] == [(7, "out")]
    assert [(v.track_id, v.zone) for v in out.ended] == [(7, "shelf")]
    assert len(out.paths) == 1


# People in a closed scene, several in view at once, walking past and behind each other:
# each starts and ends well away from the line, wanders in between.
people = st.lists(
    st.tuples(
        st.integers(0, 30),  # first frame
        st.booleans(),  # starts inside (right of the line)?
        st.lists(st.floats(0.05, 0.95), min_size=0, max_size=12),
        st.booleans(),  # ends inside?
        st.floats(0.05, 0.6),  # height, normalised: the band scales with it
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(people)
def test_ins_minus_outs_equals_the_change_in_occupancy_with_people_who_overlap(crowd):
    config = AnalyticsConfig(lines=[LineSpec(name="door", points=(0.5, 0.0, 0.5, 1.0))])
    a = Analytics(config, track_timeout_s=0.5)
    walks: dict[int, dict[int, tuple[float, float]]] = {}
    start_inside = end_inside = 0
    for tid, (first, s_in, middle, e_in, h) in enumerate(crowd, start=1):
        far = 0.5 + h + 0.1  # beyond anyone's band
        xs = [far if s_in else 1 - far] * 3 + middle + [far if e_in else 1 - far] * 3
        walks[tid] = {first + i: (min(max(x, 0.0), 1.0), h) for i, x in enumerate(xs)}
        start_inside += s_in
        end_inside += e_in
    events = []
    for f in range(max(max(w) for w in walks.values()) + 1):
        here = [(tid, w[f]) for tid, w in walks.items() if f in w]
        ids = np.array([tid for tid, _ in here], np.int64)
        feet = np.array([[x, 0.9] for _, (x, _) in here]).reshape(-1, 2)
        heights = np.array([h for _, (_, h) in here])
        events += a.update(ids, feet, f * 0.1, heights, frame_size=(1000, 1000)).crossings
    events += a.finish().crossings
    ins = sum(e.direction == "in" for e in events)
    # "in" = right -> left with this line, so entering the right-side room is "out".
    assert (len(events) - ins) - ins == end_inside - start_inside
