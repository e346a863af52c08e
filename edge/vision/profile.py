"""Which detector a camera runs, chosen from what it sees: the cheap one, or the crowd one.

The cheap detector (yolox_nano, COCO) is fast and finds people who stand apart; in a dense
scene of small, half-hidden people it misses most of them. The crowd detector
(bytetrack_nano_mot17, trained on crowd data) finds them at about four times the cost. The
choice is made from measured evidence, not from the people already found (a detector that
misses the small people cannot report them as small): on a few sampled frames both detectors
run, and the cheap one's recall is measured against the crowd one's confident boxes. When the
cheap detector finds fewer than ``min_recall`` of them, the camera is a crowd camera.

Pure: ``ProfilePolicy.observe(cheap_boxes, crowd_boxes, t)`` takes one probe frame's boxes and
returns the profile to run next; ``probe_due(t)`` says when to sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.time_steps import BackSteps
from edge.tracking.tracker import iou_matrix

Profile = Literal["sparse", "crowd"]
MATCH_IOU = 0.5  # a crowd box counts as found by the cheap detector at this overlap
CONFIDENT = 0.5  # the crowd pass's boxes that are taken as people
CHEAP_SCORE = 0.3  # the cheap pass's boxes that may find them (the tracker's second stage
# uses boxes this low, so a person found at 0.3 is followed)


def cheap_recall(
    cheap: npt.NDArray[np.floating], crowd: npt.NDArray[np.floating]
) -> tuple[int, int]:
    """(people of the crowd pass found by the cheap pass, people of the crowd pass)."""
    if len(crowd) == 0:
        return 0, 0
    if len(cheap) == 0:
        return 0, len(crowd)
    iou = iou_matrix(np.asarray(crowd, np.float64), np.asarray(cheap, np.float64))
    return int((iou.max(axis=1) >= MATCH_IOU).sum()), len(crowd)


@dataclass
class ProfilePolicy:
    profile: Profile = "sparse"
    min_recall: float = 0.8  # below this the camera runs the crowd detector ...
    back_recall: float = 0.9  # ... and returns to the cheap one only above this
    probe_frames: int = 5  # frames pooled for one decision
    probe_spacing_s: float = 1.0  # between the frames of a re-probe (the first is at once:
    # every second on the wrong detector is a second of people missed)
    reprobe_s: float = 600.0  # scenes change over the day: probe again this often
    min_people: int = 10  # fewer people than this in a probe say too little: no change ...
    retry_s: float = 60.0  # ... and the next probe comes this soon, not after reprobe_s: a
    # node started in an empty store (a reboot at night) decides within a minute of the
    # first people, at five frames of both detectors a minute while nobody is there
    recall: float | None = None  # the last probe's pooled recall
    _found: int = 0
    _people: int = 0
    _n: int = 0
    _last_probe_t: float = field(default=-np.inf)
    _series_start_t: float = field(default=-np.inf)
    _next_series_in_s: float = 0.0  # from the last series' start: reprobe_s, or retry_s
    _first_t: float | None = None  # when the first probe began
    _clock: BackSteps = field(default_factory=BackSteps)

    def __post_init__(self) -> None:
        if not 0 < self.retry_s <= self.reprobe_s:
            raise ValueError(f"need 0 < retry_s <= reprobe_s, got {self.retry_s}, {self.reprobe_s}")
        if not 0 < self.min_recall <= self.back_recall <= 1:
            raise ValueError(
                f"need 0 < min_recall <= back_recall <= 1, got {self.min_recall}, "
                f"{self.back_recall}"
            )

    def probe_due(self, t: float) -> bool:
        """Whether the detection frame at ``t`` should run both detectors."""
        self._follow_clock(t)
        if self._n > 0:  # a probe under way: its next frame after the spacing
            first = self._series_start_t == self._first_t
            return first or t - self._last_probe_t >= self.probe_spacing_s
        return t - self._series_start_t >= self._next_series_in_s

    def _follow_clock(self, t: float) -> None:
        """A clock stepped back (``edge.time_steps``) moves the schedule's times with it, or
        the next probe would wait for the clock to catch up."""
        if (back := self._clock.back(t)) < 0:
            self._last_probe_t += back
            self._series_start_t += back
            if self._first_t is not None:
                self._first_t += back

    def observe(
        self, cheap: npt.NDArray[np.floating], crowd: npt.NDArray[np.floating], t: float
    ) -> Profile:
        """One probe frame: cheap boxes (score >= CHEAP_SCORE) and the crowd pass's confident
        boxes, in the same pixels -> the profile to run from now on."""
        self._follow_clock(t)
        if self._n == 0:
            self._series_start_t = t
            if self._first_t is None:
                self._first_t = t
        found, people = cheap_recall(cheap, crowd)
        self._found, self._people, self._n = self._found + found, self._people + people, self._n + 1
        self._last_probe_t = t
        if self._n < self.probe_frames:
            return self.profile
        decided = self._people >= self.min_people
        if decided:
            self.recall = self._found / self._people
            if self.recall < self.min_recall:
                self.profile = "crowd"
            elif self.recall >= self.back_recall:
                self.profile = "sparse"
        self._next_series_in_s = self.reprobe_s if decided else self.retry_s
        self._found = self._people = self._n = 0
        return self.profile
