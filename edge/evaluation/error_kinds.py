"""What each counting error of the suite is: every missed true crossing and every extra
reported one, named by what the tracks did to the true people around it.

The suite's pooled figures say how much is lost; these kinds say where, so that a tracker or
counter change is aimed at the errors it can mend and judged on them. Pure: the inputs are the
line's reported crossings, its banded truth, and which track covered which true person on which
frame (one-to-one per frame at IoU >= 0.5, as the identity figures match them).

Missed true crossings (the person's banded crossing at frame f, no report of that direction
within MATCH_WINDOW_S):

- ``untracked``: no track covered the person within WINDOW_S of f;
- ``one side``: tracks covered the person only before f, or only after;
- ``id change``: the track that covered the person last before f is not the one that covered
  them first after it (an identity lost at the line);
- ``uncounted``: one track followed the person across and reported no crossing of that
  direction on this line (the band, the settling of a reversal, or a side never established);
- ``elsewhere``: that track did report the direction, but more than MATCH_WINDOW_S away or
  matched to someone else's crossing (two people crossing together, counted once).

Extra reported crossings (no true crossing of that direction within MATCH_WINDOW_S):

- ``nobody``: the track covered no true person within WINDOW_S of it;
- ``swap``: it covered more than one person within WINDOW_S (identity passed between people);
- ``no cross``: it covered one person, who never crosses this line in the banded truth (the
  track's foot went where the true feet did not);
- ``again``: it covered one person, who does cross this line, but this report is a second one
  or more than MATCH_WINDOW_S off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from edge.analytics.counting import CrossingEvent
from edge.evaluation.evaluate import matched_pairs
from edge.evaluation.mot import TrueCrossing

WINDOW_S = 2.0  # how far from an error the tracks are looked at: a few steps either side
MISSED = ("untracked", "one side", "id change", "uncounted", "elsewhere")
EXTRA = ("nobody", "swap", "no cross", "again")

PersonTracks = Mapping[int, Mapping[int, int]]  # true person -> frame -> track id covering them


def track_people(person_tracks: PersonTracks) -> dict[int, dict[int, int]]:
    """The inverse map: track id -> frame -> the true person it covered."""
    out: dict[int, dict[int, int]] = {}
    for pid, frames in person_tracks.items():
        for f, tid in frames.items():
            out.setdefault(tid, {})[f] = pid
    return out


def missed_kind(c: TrueCrossing, pred: list[tuple[int, CrossingEvent]],
                person_tracks: PersonTracks, window: int) -> str:
    seen = person_tracks.get(c.track_id, {})
    before = [seen[f] for f in range(c.frame - window, c.frame) if f in seen]
    after = [seen[f] for f in range(c.frame, c.frame + window + 1) if f in seen]
    if not before and not after:
        return "untracked"
    if not before or not after:
        return "one side"
    if before[-1] != after[0]:
        return "id change"
    same = [e for _, e in pred if e.track_id == before[-1] and e.direction == c.direction]
    return "elsewhere" if same else "uncounted"


def extra_kind(frame: int, e: CrossingEvent, crossers: set[int],
               people_of_track: Mapping[int, Mapping[int, int]], window: int) -> str:
    seen = people_of_track.get(e.track_id, {})
    people = {seen[f] for f in range(frame - window, frame + window + 1) if f in seen}
    if not people:
        return "nobody"
    if len(people) > 1:
        return "swap"
    return "again" if people.pop() in crossers else "no cross"


def line_error_kinds(pred: list[tuple[int, CrossingEvent]], truth: list[TrueCrossing],
                     person_tracks: PersonTracks, fps: float,
                     people_of_track: Mapping[int, Mapping[int, int]] | None = None,
                     ) -> dict[str, dict[str, int]]:
    """One line: its reported crossings (frame, event) against its banded truth -> counts of
    each kind of missed and extra crossing. The counts add up to the line's misses and extras."""
    window = max(1, round(WINDOW_S * fps))
    pairs = matched_pairs([(f, e.direction) for f, e in pred], truth, fps)
    hit_pred, hit_true = {p for p, _ in pairs}, {t for _, t in pairs}
    by_track = track_people(person_tracks) if people_of_track is None else people_of_track
    crossers = {c.track_id for c in truth}
    missed = Counter(missed_kind(c, pred, person_tracks, window)
                     for i, c in enumerate(truth) if i not in hit_true)
    extra = Counter(extra_kind(f, e, crossers, by_track, window)
                    for i, (f, e) in enumerate(pred) if i not in hit_pred)
    return {"missed": {k: missed[k] for k in MISSED}, "extra": {k: extra[k] for k in EXTRA}}


def pooled_kinds(per_line: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    return {side: {k: sum(p[side][k] for p in per_line) for k in kinds}
            for side, kinds in (("missed", MISSED), ("extra", EXTRA))}
