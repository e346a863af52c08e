"""Passes and unique visitors: a re-entry within N minutes is a pass, not a new visitor.

Every 'in' crossing of a visitor line by a track that is not staff is a pass. It is also a
unique visitor unless the person's look matches the look of an earlier 'in' crossing of the
last ``window_s`` seconds (``IdentitySettings.reentry_window_s``): then they went out and came
back. Looks are compared 'in' to 'in' only: a camera sees people entering from one side and
leaving from the other, and front and back views of one person are further apart than two
strangers' fronts.

What is kept, and for how long: one appearance embedding (a vector of numbers computed from
the person's crop by the re-identification model, edge/vision/appearance.py) per 'in'
crossing, with its time, in this process's memory only; it is dropped ``window_s`` after that
crossing, or earlier when more than ``MAX_LOOKS`` are held (the oldest first). Nothing of it is
written to disk or sent: the window carries two counts (passes, unique visitors). With no look
(re-identification off, or the person never seen unoccluded) a pass counts as a unique
visitor, so unique visitors never exceed passes and err high rather than low.

The decision has the form of re-identification's (edge/tracking/reid.py), with a stricter
threshold (``REENTRY_MAX_DISTANCE``): a cosine distance at most ``max_distance`` that
beats every other person's remembered looks by ``margin`` (looks matched to one another are
one person).

``TrackerLooks`` is the adapter to the identity stage: it reads what edge/tracking/ already
exposes (``Tracker.tracks[i].crop`` / ``.embedding``, and ``AppearanceReid.embed``) and keeps
references to the crops of the tracks alive in the last frame, so a crossing reported just
after its track ended still has a look.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.time_steps import BackSteps
from edge.vision.appearance import cosine_distance

F32 = npt.NDArray[np.float32]
# Stricter than re-identification's 0.4: that one compares a lost person with the few boxes
# their motion allows; this one with everyone who came in for half an hour, so each stranger
# is a chance of a false re-entry, which would delete a visitor. On ground-truth crops
# (docs/accuracy.md, "Re-identification threshold") one person's looks are 0.23 apart at the
# median on MOT17-09 and 0.37 on PETS09-S2L1; 0.25 keeps about half of the first and few of
# the second, and far fewer strangers than 0.4 (3.1 % of PETS09's pairs are under 0.4).
REENTRY_MAX_DISTANCE = 0.25
MAX_LOOKS = 5000  # a busy door's half hour (~3 people a second) fits; memory ~10 MB at 512 floats


@dataclass
class ReentryMemory:
    window_s: float = 1800.0
    max_distance: float = REENTRY_MAX_DISTANCE
    margin: float = 0.1
    max_looks: int = MAX_LOOKS
    # t, look, person, track that crossed
    _looks: deque[tuple[float, F32, int, int]] = field(default_factory=deque)
    _people: int = 0
    _clock: BackSteps = field(default_factory=BackSteps)

    def __post_init__(self) -> None:
        if self.window_s < 0 or not 0 < self.max_distance < 2 or self.max_looks < 1:
            raise ValueError(f"need window_s >= 0, 0 < max_distance < 2, max_looks >= 1; got "
                             f"{self.window_s}, {self.max_distance}, {self.max_looks}")

    def __len__(self) -> int:
        return len(self._looks)

    def forget_before(self, t: float) -> None:
        """Drop looks older than the window at time ``t`` (called every frame)."""
        self._follow_clock(t)
        while self._looks and t - self._looks[0][0] > self.window_s:
            self._looks.popleft()

    def _follow_clock(self, t: float) -> None:
        """A clock stepped back (``edge.time_steps``) moves the looks' times with it:
        otherwise every look from before the step is in the future, no one who comes back is
        recognised, and nothing is forgotten until the clock catches up."""
        if (back := self._clock.back(t)) < 0:
            self._looks = deque((ts + back, look, who, tid) for ts, look, who, tid in self._looks)

    def on_in(self, look: F32 | None, t: float, track_id: int = -1,
              in_view: frozenset[int] = frozenset()) -> bool:
        """An 'in' crossing at ``t`` by ``track_id`` with the person's embedding (None: none
        was taken) -> True if it is a unique visitor, False if a re-entry. Looks taken from
        tracks still ``in_view`` are not candidates: that person is here, not coming back."""
        self.forget_before(t)
        if look is None or self.window_s == 0:
            return True
        person = self._match(look, t, in_view)
        if person is None:
            self._people += 1
        self._looks.append((t, look, self._people if person is None else person, track_id))
        while len(self._looks) > self.max_looks:
            self._looks.popleft()
        return person is None

    def _match(self, look: F32, t: float, in_view: frozenset[int]) -> int | None:
        """The person whose remembered looks are nearest, if near enough and clearly nearer
        than anyone else's (a person seen twice is one candidate, not two)."""
        seen = {who for (_, _, who, tid) in self._looks if tid in in_view}
        past = [(emb, who) for (ts, emb, who, _) in self._looks
                if 0 <= t - ts <= self.window_s and who not in seen]
        if not past:
            return None
        d = cosine_distance(look[None, :], np.stack([emb for emb, _ in past]))[0]
        nearest: dict[int, float] = {}
        for (_, who), dist in zip(past, d.tolist(), strict=True):
            nearest[who] = min(dist, nearest.get(who, np.inf))
        ranked = sorted(nearest.items(), key=lambda kv: kv[1])
        who, best = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else np.inf
        return who if best <= self.max_distance and second - best >= self.margin else None


@dataclass
class PassCounter:
    """Unique visitors among the passes of one camera, and who of them votes.

    A track that crosses in a second time in its life went out and came back without losing
    its identity: a re-entry, known without any look. Otherwise the memory decides."""

    memory: ReentryMemory
    _entered: dict[int, bool] = field(default_factory=dict)  # live track -> entered as unique

    def on_in(self, track_id: int, look: Callable[[], F32 | None], t: float,
              in_view: frozenset[int] = frozenset()) -> bool:
        """An 'in' crossing -> True if a unique visitor; ``look`` is asked only when needed;
        ``in_view``: the tracks seen in this frame (people here cannot be coming back)."""
        if track_id in self._entered:
            return False
        unique = self.memory.on_in(look(), t, track_id, in_view)
        self._entered[track_id] = unique
        return unique

    def end(self, track_id: int) -> bool:
        """The track ended -> whether it entered as a unique visitor (then it votes)."""
        return self._entered.pop(track_id, False)

    def rename(self, old: int, new: int) -> None:
        """Identity repair continued track ``old`` as ``new``: it has still crossed in."""
        if old in self._entered:
            self._entered[new] = self._entered.pop(old)


@dataclass
class TrackerLooks:
    """The looks of the tracker's tracks, read through what edge/tracking exposes.

    ``refresh(tracks)`` after each tracker step keeps a reference to each track's latest crop
    (and embedding, if the tracker computed one); ``look(tid)`` embeds on demand, only for a
    track that crossed in. Tracks absent from two refreshes in a row are forgotten."""

    embed: Callable[[npt.NDArray[np.uint8]], F32]
    _now: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    _before: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    embedded: int = 0

    @classmethod
    def of(cls, tracker: Any) -> TrackerLooks | None:
        """The adapter for a tracker with appearance re-identification, else None."""
        embed = getattr(getattr(tracker, "reid", None), "embed", None)
        return cls(embed) if callable(embed) else None

    def refresh(self, tracks: list[Any]) -> None:
        self._before = self._now
        self._now = {tr.track_id: (tr.crop, tr.embedding) for tr in tracks
                     if getattr(tr, "crop", None) is not None}

    def look(self, track_id: int) -> F32 | None:
        found = self._now.get(track_id) or self._before.get(track_id)
        if found is None:
            return None
        crop, emb = found
        if emb is not None:
            return np.asarray(emb, np.float32)
        self.embedded += 1
        return np.asarray(self.embed(crop[None])[0], np.float32)
