"""Multi-object tracker in the ByteTrack manner, built for crowds.

Two-stage association per detection frame: confident boxes first (against every live or
recently lost track), then the low-score boxes that crowds produce for half-hidden people
(against the still unmatched live tracks only), so a person behind another keeps their id
instead of spawning a new one. Motion is a constant-velocity Kalman filter on
(centre x, centre y, aspect, height); cost is 1 - IoU; assignment is Hungarian (scipy).
Tracks need ``min_hits`` matches before they are reported and expire ``max_lost_s`` after
their last match, so memory is bounded by the number of people in view.

``step(None, t)`` advances the motion model without detections: the pipeline uses it on
frames where the detector is skipped.

Re-identification (in the manner of norfair's ``reid_distance_function``): a track lost for
longer than the IoU stage can bridge is kept, for up to ``reid_max_age_s``, as a candidate for
confident boxes that would otherwise start a new track. The decision is an injectable
``ReidDistance`` (motion gate and appearance, edge/tracking/reid.py); the revived track keeps
its id,
so every analytic downstream sees one person. Appearance is computed only there: when a box
would start a track near a lost one, never for people tracked without trouble.

Untangling (``Overlap``, ``crossed_better``): where two people's boxes overlap, a detector
often draws one box for both, and when they part the two tracks may leave with each other's
person (a person walks past one who stands still: the standing person's track leaves with the
walker). When the two are seen apart again, within the IoU buffer of the overlap's start,
each track's motion from before the overlap is carried forward: if each track now sits where
the *other's* motion leads, by ``untangle_margin`` of their height more than where its own
leads, the identities changed hands while the boxes were one, and are given back. Motion
alone, so it costs nothing and works for people too small for a look.

``ended`` after each step lists the tracks given up on at that step: the camera's track
lifetime table (edge/tracking/track_life.py) takes it from here.

Time that goes back (``edge.time_steps``) moves every time the tracker keeps by the same
step, so a track lost before it still ends after its buffer instead of when the clock catches
up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edge.time_steps import BackSteps
from edge.vision.detections import Detections

F64 = npt.NDArray[np.float64]

_WP, _WV = 1.0 / 20, 1.0 / 160  # ByteTrack's position/velocity noise per unit of box height
CLEAR_IOU = 0.05  # boxes overlapping no more than this are seen apart (a look's "clear" view)
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def xyxy_to_xyah(b: F64) -> F64:
    w, h = b[:, 2] - b[:, 0], np.maximum(b[:, 3] - b[:, 1], 1e-3)
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(m: F64) -> F64:
    w, h = m[:, 2] * m[:, 3], m[:, 3]
    return np.stack([m[:, 0] - w / 2, m[:, 1] - h / 2, m[:, 0] + w / 2, m[:, 1] + h / 2], axis=1)


def iou_matrix(a: F64, b: F64) -> F64:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    out: F64 = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    return out


def assign(cost: F64, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian assignment; pairs above max_cost are rejected. -> matches, free rows, free cols."""
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    rows, cols = linear_sum_assignment(np.where(cost > max_cost, 1e6, cost))
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_cost]
    mr, mc = {p[0] for p in pairs}, {p[1] for p in pairs}
    return (
        pairs,
        [r for r in range(cost.shape[0]) if r not in mr],
        [c for c in range(cost.shape[1]) if c not in mc],
    )


@dataclass
class Track:
    track_id: int
    mean: F64
    cov: F64
    score: float
    hits: int = 1
    last_matched_t: float = 0.0
    lost: bool = False
    first_t: float = 0.0
    # Appearance memory for re-identification (edge/tracking/reid.py); pixels and embeddings stay in
    # this process and die with the track.
    crop: npt.NDArray[np.uint8] | None = None
    crop_t: float = -np.inf
    embedding: npt.NDArray[np.float32] | None = None
    seen_at: F64 | None = None  # (cx, cy, a, h) at the last match: where it was last seen

    def xyxy(self) -> F64:
        out: F64 = xyah_to_xyxy(self.mean[None, :4])[0]
        return out


def boxes_of(tracks: list[Track]) -> F64:
    """(x1, y1, x2, y2) of every track, in one conversion."""
    return xyah_to_xyxy(np.stack([t.mean[:4] for t in tracks]))


def kf_initiate(z: F64) -> tuple[F64, F64]:
    h = z[3]
    std = np.array(
        [
            2 * _WP * h,
            2 * _WP * h,
            1e-2,
            2 * _WP * h,
            10 * _WV * h,
            10 * _WV * h,
            1e-5,
            10 * _WV * h,
        ]
    )
    return np.r_[z, np.zeros(4)], np.diag(std**2)


def kf_predict(tracks: list[Track]) -> None:
    """One constant-velocity step for all tracks at once."""
    if not tracks:
        return
    mean = np.stack([t.mean for t in tracks])
    cov = np.stack([t.cov for t in tracks])
    for i, t in enumerate(tracks):
        if t.lost:  # a lost track keeps its position estimate but stops growing or shrinking
            mean[i, 7] = 0.0
    h = mean[:, 3]
    std = np.stack(
        [
            _WP * h,
            _WP * h,
            np.full_like(h, 1e-2),
            _WP * h,
            _WV * h,
            _WV * h,
            np.full_like(h, 1e-5),
            _WV * h,
        ],
        axis=1,
    )
    mean = mean @ _F.T
    cov = np.einsum("ij,njk,lk->nil", _F, cov, _F) + np.einsum("ni,ij->nij", std**2, np.eye(8))
    for i, t in enumerate(tracks):
        t.mean, t.cov = mean[i], cov[i]


def _innovation_cov(track: Track) -> F64:
    """Covariance of the track's predicted measurement plus the measurement's own noise."""
    h = track.mean[3]
    r = np.diag(np.array([_WP * h, _WP * h, 1e-1, _WP * h]) ** 2)
    out: F64 = _H @ track.cov @ _H.T + r
    return out


def kf_distance(track: Track, z: F64) -> F64:
    """Squared Mahalanobis distance of measurements ``z`` (n, 4: cx, cy, a, h) from where the
    track's motion model expects it, in the filter's own uncertainty (which grows while the
    track is unseen)."""
    d = z - (_H @ track.mean)[None, :]
    out: F64 = np.einsum("ni,ij,nj->n", d, np.linalg.inv(_innovation_cov(track)), d)
    return out


def kf_update(track: Track, z: F64) -> None:
    s = _innovation_cov(track)
    k = np.linalg.solve(s, (track.cov @ _H.T).T).T
    track.mean = track.mean + k @ (z - _H @ track.mean)
    track.cov = track.cov - k @ s @ k.T


class ReidDistance(Protocol):
    """Decides which lost tracks new boxes continue (edge/tracking/reid.py has the real one)."""

    max_age_s: float

    def knows(self, track: Track) -> bool:
        """Whether it could recognise this track if it were lost."""

    def remember(
        self, tracks: list[Track], boxes: F64, others: F64, image: Image, t: float
    ) -> None:
        """Keep what is needed to recognise these matched tracks later (their boxes given)."""

    def revive(
        self, lost: list[Track], boxes: F64, image: Image, t: float
    ) -> list[tuple[int, int]]:
        """(lost track index, box index) pairs judged the same person."""


Image = npt.NDArray[np.uint8]


@dataclass
class TrackerSettings:
    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_cost: float = 0.8  # first stage: 1 - IoU * score
    low_match_cost: float = 0.5  # second stage: 1 - IoU
    unconfirmed_cost: float = 0.7
    min_hits: int = 2
    max_lost_s: float = 1.5
    # A lost track is kept as long as it had been followed, within these bounds.
    min_lost_s: float = 0.5
    # Two tracks that part give their identities back when each sits where the other's motion
    # from before the overlap leads, by this much of their height more than where its own
    # leads: five times the filter's measurement noise on a position (_WP, 1/20 of the
    # height), so the difference of the two hypotheses' errors is well past noise
    # (docs/accuracy.md, "Untangling"). None: never.
    untangle_margin: float | None = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError(
                f"need 0 <= low_score <= high_score <= 1, got {self.low_score}, {self.high_score}"
            )
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if not 0 < self.min_lost_s <= self.max_lost_s:
            raise ValueError(
                f"need 0 < min_lost_s <= max_lost_s, got {self.min_lost_s}, {self.max_lost_s}"
            )
        if self.untangle_margin is not None and self.untangle_margin < 0:
            raise ValueError(f"untangle_margin must be >= 0, got {self.untangle_margin}")


@dataclass
class Overlap:
    """Two tracks whose boxes came close enough to take each other's detections, and where each
    was and how it moved when that began (Kalman centre, and velocity per step)."""

    a: Track
    b: Track
    t0: float
    step0: int
    a_xy: F64
    a_v: F64
    b_xy: F64
    b_v: F64

    @classmethod
    def begin(cls, a: Track, b: Track, t: float, step: int) -> Overlap:
        return cls(a, b, t, step, a.mean[:2].copy(), a.mean[4:6].copy(), b.mean[:2].copy(),
                   b.mean[4:6].copy())


def crossed_better(o: Overlap, steps: int, margin: float) -> bool:
    """Whether, ``steps`` after the overlap began, the two tracks sit where the other one's
    motion before it leads, by ``margin`` of their mean height more than where their own
    leads (centre distances, summed over the two)."""
    a_at, b_at = o.a_xy + o.a_v * steps, o.b_xy + o.b_v * steps
    a_now, b_now = o.a.mean[:2], o.b.mean[:2]
    own = np.hypot(*(a_at - a_now)) + np.hypot(*(b_at - b_now))
    crossed = np.hypot(*(a_at - b_now)) + np.hypot(*(b_at - a_now))
    return bool(own - crossed >= margin * (o.a.mean[3] + o.b.mean[3]) / 2)


def exchange_identities(a: Track, b: Track) -> None:
    """Everything that is the person's, not the box's: id, start, and look."""
    a.track_id, b.track_id = b.track_id, a.track_id
    a.first_t, b.first_t = b.first_t, a.first_t
    a.crop, b.crop = b.crop, a.crop
    a.crop_t, b.crop_t = b.crop_t, a.crop_t
    a.embedding, b.embedding = b.embedding, a.embedding


@dataclass
class Tracker:
    settings: TrackerSettings = field(default_factory=TrackerSettings)
    reid: ReidDistance | None = None
    tracks: list[Track] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)  # confirmed tracks given up at the last step
    revived: int = 0  # lost tracks continued by re-identification, in all
    exchanged: int = 0  # pairs of identities given back by untangling, in all
    _next_id: int = 1
    _steps: int = 0
    _overlaps: dict[tuple[int, int], Overlap] = field(default_factory=dict)
    _clock: BackSteps = field(default_factory=BackSteps)

    def step(
        self, detections: Detections | None, t: float, image: Image | None = None
    ) -> Detections:
        """Advance one frame; associate when detections are given (``image``: the frame they
        were found in, in the same pixels, for re-identification). Returns confirmed live
        tracks."""
        if (back := self._clock.back(t)) < 0:
            self._shift_times(back)
        kf_predict(self.tracks)
        self._steps += 1
        if detections is not None:
            self._associate(detections, t, image)
            if self.settings.untangle_margin is not None:
                self._untangle(t, self.settings.untangle_margin)
        keep, self.ended = [], []
        for tr in self.tracks:
            if tr.lost and t - tr.last_matched_t > self._keep_s(tr):
                if tr.hits >= self.settings.min_hits:
                    self.ended.append(tr.track_id)
            else:
                keep.append(tr)
        self.tracks = keep
        return self.active()

    def _shift_times(self, step: float) -> None:
        """The clock stepped back by ``-step``: every time kept moves with it, so ages hold."""
        for tr in self.tracks:
            tr.last_matched_t += step
            tr.first_t += step
            tr.crop_t += step
        for o in self._overlaps.values():
            o.t0 += step

    def active(self) -> Detections:
        live = [tr for tr in self.tracks if not tr.lost and tr.hits >= self.settings.min_hits]
        if not live:
            return Detections.empty().with_tracker_id(np.zeros(0, np.int64))
        return Detections(
            boxes_of(live).astype(np.float32),
            np.array([tr.score for tr in live], np.float32),
            np.zeros(len(live), np.int64),
            np.array([tr.track_id for tr in live], np.int64),
        )

    def _associate(self, det: Detections, t: float, image: Image | None) -> None:
        s = self.settings
        boxes = det.xyxy.astype(np.float64)
        scores = det.confidence.astype(np.float64)
        high = np.flatnonzero(scores >= s.high_score)
        low = np.flatnonzero((scores >= s.low_score) & (scores < s.high_score))
        confirmed = [tr for tr in self.tracks if tr.hits >= s.min_hits]
        pending = [tr for tr in self.tracks if tr.hits < s.min_hits]

        # Stage 1: confident boxes against confirmed tracks, live or lost within the buffer
        # that IoU can bridge (past it, the predicted box has drifted: only re-identification
        # may continue the track).
        dormant = [tr for tr in confirmed if tr.lost and not self._bridged(tr, t)]
        asleep = {id(tr) for tr in dormant}
        confirmed = [tr for tr in confirmed if id(tr) not in asleep]
        cost = 1.0 - self._ious(confirmed, boxes[high]) * scores[high][None, :]
        pairs, free_tr, free_det = assign(cost, s.match_cost)
        for r, c in pairs:
            self._match(confirmed[r], boxes[high[c]], scores[high[c]], t)
        left_high = high[free_det]

        # Stage 2: low-score boxes keep live tracks alive through partial occlusion.
        live_free = [confirmed[r] for r in free_tr if not confirmed[r].lost]
        pairs, free_tr2, free_low = assign(
            1.0 - self._ious(live_free, boxes[low]), s.low_match_cost
        )
        for r, c in pairs:
            self._match(live_free[r], boxes[low[c]], scores[low[c]], t)
        low_left = low[free_low]
        for r in free_tr2:
            live_free[r].lost = True

        # Tentative tracks need a second match, or they are dropped.
        cost = 1.0 - self._ious(pending, boxes[left_high]) * scores[left_high][None, :]
        pairs, free_p, free_det = assign(cost, s.unconfirmed_cost)
        for r, c in pairs:
            self._match(pending[r], boxes[left_high[c]], scores[left_high[c]], t)
        still = [pending[r] for r in free_p]
        pairs, free_p2, _ = assign(1.0 - self._ious(still, boxes[low_left]), s.low_match_cost)
        for r, c in pairs:
            self._match(still[r], boxes[low_left[c]], scores[low_left[c]], t)
        dropped = {id(still[r]) for r in free_p2}
        self.tracks = [tr for tr in self.tracks if id(tr) not in dropped]

        newcomers = left_high[free_det]
        newcomers = newcomers[scores[newcomers] >= s.new_track_score]
        lost = [tr for tr in confirmed if tr.lost] + dormant
        if self.reid is not None and image is not None and lost and newcomers.size:
            for r, c in self.reid.revive(lost, boxes[newcomers], image, t):
                self._match(lost[r], boxes[newcomers[c]], scores[newcomers[c]], t)
                self.revived += 1
                newcomers[c] = -1
        for i in newcomers[newcomers >= 0]:
            self._start(boxes[i], scores[i], t)
        if self.reid is not None and image is not None:
            self._remember(boxes, scores, t, image)

    def _remember(self, boxes: F64, scores: F64, t: float, image: Image) -> None:
        """Let the re-identification keep the look of confirmed tracks matched at ``t``."""
        s = self.settings
        matched = [
            tr for tr in self.tracks
            if tr.last_matched_t == t and tr.hits >= s.min_hits and tr.score >= s.high_score
        ]
        if matched and self.reid is not None:
            self.reid.remember(matched, boxes_of(matched), boxes[scores >= s.low_score], image, t)

    def _untangle(self, t: float, margin: float) -> None:
        """Opens an ``Overlap`` for each pair of confirmed tracks (live, or lost within the IoU
        buffer) whose boxes overlap enough to take each other's detections (the first stage's
        own gate), and settles it once both are seen apart (``CLEAR_IOU``): the identities are
        given back where ``crossed_better``. An overlap is dropped unjudged past the IoU buffer
        (``max_lost_s``: the horizon the tracker trusts its motion over) or when a track ends."""
        s = self.settings
        near = [tr for tr in self.tracks
                if tr.hits >= s.min_hits and (not tr.lost or self._bridged(tr, t))]
        index = {id(tr): i for i, tr in enumerate(near)}
        boxes = boxes_of(near) if near else np.zeros((0, 4))
        iou = iou_matrix(boxes, boxes)
        for i, j in zip(*np.nonzero(np.triu(iou, 1) >= 1.0 - s.match_cost), strict=True):
            a, b = near[int(i)], near[int(j)]
            key = (min(id(a), id(b)), max(id(a), id(b)))
            if key not in self._overlaps:
                self._overlaps[key] = Overlap.begin(a, b, t, self._steps)
        for key, o in list(self._overlaps.items()):
            if id(o.a) not in index or id(o.b) not in index or t - o.t0 > s.max_lost_s:
                del self._overlaps[key]
            elif not (o.a.lost or o.b.lost) and iou[index[id(o.a)], index[id(o.b)]] <= CLEAR_IOU:
                del self._overlaps[key]
                if crossed_better(o, self._steps - o.step0, margin):
                    exchange_identities(o.a, o.b)
                    self.exchanged += 1

    def coasting(self, t: float) -> F64:
        """Predicted boxes of the confirmed tracks lost at ``t`` for no longer than the IoU
        buffer that may still continue them: people hidden for a moment, mostly behind someone
        nearer the camera, who are still there. They are not reported as tracks (their place
        is a guess); they count as people in view."""
        held = [tr for tr in self.tracks
                if tr.lost and tr.hits >= self.settings.min_hits and self._bridged(tr, t)]
        return boxes_of(held) if held else np.zeros((0, 4))

    def max_keep_s(self) -> float:
        """The longest a lost track is kept before it is ended."""
        keep = self.settings.max_lost_s
        return max(keep, self.reid.max_age_s) if self.reid is not None else keep

    def _buffer(self, tr: Track) -> float:
        """How long a lost track is matched by IoU with its predicted box."""
        s = self.settings
        return min(s.max_lost_s, max(s.min_lost_s, tr.last_matched_t - tr.first_t))

    def _bridged(self, tr: Track, t: float) -> bool:
        """Whether a track unmatched since ``last_matched_t`` is still within its IoU buffer."""
        return t - tr.last_matched_t <= self._buffer(tr)

    def _keep_s(self, tr: Track) -> float:
        """How long a lost track is kept: the IoU buffer, or re-identification's maximum age
        for a confirmed track it can recognise."""
        if self.reid is not None and tr.hits >= self.settings.min_hits and self.reid.knows(tr):
            return max(self._buffer(tr), self.reid.max_age_s)
        return self._buffer(tr)

    @staticmethod
    def _ious(tracks: list[Track], boxes: F64) -> F64:
        if not tracks:
            return np.zeros((0, len(boxes)))
        return iou_matrix(boxes_of(tracks), boxes)

    def _match(self, tr: Track, box: F64, score: float, t: float) -> None:
        z = xyxy_to_xyah(box[None, :])[0]
        kf_update(tr, z)
        tr.score, tr.hits, tr.last_matched_t, tr.lost = float(score), tr.hits + 1, t, False
        tr.seen_at = z

    def _start(self, box: F64, score: float, t: float) -> None:
        z = xyxy_to_xyah(box[None, :])[0]
        mean, cov = kf_initiate(z)
        tr = Track(self._next_id, mean, cov, float(score), 1, t, first_t=t, seen_at=z)
        self._next_id += 1
        self.tracks.append(tr)
