"""Re-identification for the tracker: is this new box the person a lost track was following?

Two cues, both needed: motion (the box lies where the lost person could have walked in the
time unseen, a radius in their own body heights that grows with that time) and appearance
(the cosine distance between the person's embedding before they were lost and the new box's,
edge/vision/appearance.py). Motion alone swaps people in a crowd; appearance alone revives a track
with a look-alike across the room.

People drawn too small for a look (``min_crop_px``) are revived by motion alone, and only
where it is unambiguous: the box lies inside the lost track's Kalman gate (the squared
Mahalanobis distance of (cx, cy, aspect, height) within the chi-square 95 % point of four
degrees of freedom, DeepSORT's gate; the filter's uncertainty grows while the track is
unseen) and the lost track and the box are each other's only candidate.

Cost stays bounded: a track keeps at most one crop, taken at most every ``crop_every_s`` while
its box overlaps nobody's (an occluded crop shows two people), and is embedded only when a new
box appears within its gate; a new box is embedded only when some lost track's gate holds it.
The crops and embeddings live on the tracks and die with them.

Constants and the data they were chosen on are in docs/accuracy.md ("Identity").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.tracking.tracker import (
    CLEAR_IOU,
    F64,
    Image,
    Track,
    assign,
    iou_matrix,
    kf_distance,
    xyxy_to_xyah,
)
from edge.vision.appearance import cosine_distance, crop_person

Embed = Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]]
CHI2_95_4DOF = 9.4877  # chi-square, 4 degrees of freedom, 95 %: DeepSORT's gating threshold


@dataclass
class AppearanceReid:
    embed: Embed
    max_age_s: float = 3.0  # a lost track is a candidate this long
    # Same person vs different, cosine distance of 0248 embeddings on ground-truth crops of
    # both development sequences: see docs/accuracy.md for the distributions.
    max_distance: float = 0.4
    gate_bodies: float = 0.75  # motion gate radius at the moment of loss, in body heights
    gate_growth: float = 1.0  # ... plus this many body heights per second unseen
    crop_every_s: float = 0.5
    clear_iou: float = CLEAR_IOU  # a box overlapping another's more than this is not a clean view
    # A revival must be unambiguous: the chosen look this much closer than the next candidate's
    # (on either side of the pair). In a crowd several strangers fall inside a gate, and a
    # threshold alone lets the nearest look-alike take over a lost person's identity.
    margin: float = 0.1
    # A look from a box shorter than this is not trusted: the model sees 256 px tall crops, the
    # separation in models/MANIFEST.md was measured on boxes over 80 px, and a small box
    # upsampled four times is mostly blur (in the suite's mosaics revivals of such boxes cost
    # more crossings than they saved, docs/accuracy.md). Such people are revived by motion
    # alone, where that is unambiguous (``small_gate``).
    min_crop_px: float = 64.0

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or not 0 < self.max_distance < 2:
            raise ValueError(
                f"need max_age_s > 0 and 0 < max_distance < 2, got {self.max_age_s}, "
                f"{self.max_distance}"
            )

    def knows(self, track: Track) -> bool:
        return track.crop is not None

    def remember(
        self, tracks: list[Track], boxes: F64, others: F64, image: Image, t: float
    ) -> None:
        due = [i for i, tr in enumerate(tracks) if t - tr.crop_t >= self.crop_every_s]
        if not due:
            return
        overlaps = (iou_matrix(boxes[due], others) > self.clear_iou).sum(axis=1)
        for i, n in zip(due, overlaps.tolist(), strict=True):
            if n <= 1:  # its own detection only
                tr = tracks[i]
                tr.crop, tr.crop_t, tr.embedding = crop_person(image, boxes[i]), t, None

    def revive(
        self, lost: list[Track], boxes: F64, image: Image, t: float
    ) -> list[tuple[int, int]]:
        by_motion = self._revive_small(lost, boxes, t)
        taken = {r for r, _ in by_motion}
        rest = [i for i in range(len(lost)) if i not in taken]
        by_look = self._revive_by_look([lost[i] for i in rest], boxes, image, t)
        return by_motion + [(rest[r], c) for r, c in by_look]

    def _revive_small(self, lost: list[Track], boxes: F64, t: float) -> list[tuple[int, int]]:
        """Pairs of a small lost track and a small box inside its Kalman gate, where each is
        the other's only candidate."""
        gate = self.small_gate(lost, boxes, t)
        return [
            (int(r), int(c)) for r, c in zip(*np.nonzero(gate), strict=True)
            if gate[r].sum() == 1 and gate[:, c].sum() == 1
        ]

    def small_gate(self, lost: list[Track], boxes: F64, t: float) -> npt.NDArray[np.bool_]:
        """Which boxes too small for a look each small lost track's motion model admits."""
        out = np.zeros((len(lost), len(boxes)), bool)
        small_box = boxes[:, 3] - boxes[:, 1] < self.min_crop_px
        if not small_box.any():
            return out
        z = xyxy_to_xyah(boxes)
        for i, tr in enumerate(lost):
            seen = self._seen_at(tr, t)
            if seen is not None and seen[3] < self.min_crop_px:
                out[i] = small_box & (kf_distance(tr, z) <= CHI2_95_4DOF)
        return out

    def _seen_at(self, tr: Track, t: float) -> F64 | None:
        """Where a lost track was last seen, if it may be revived at ``t``: lost no longer than
        ``max_age_s``, and seen clear of others once (a track never seen so may have been two
        people's box)."""
        if t - tr.last_matched_t > self.max_age_s or tr.crop is None:
            return None
        return tr.seen_at

    def _revive_by_look(
        self, lost: list[Track], boxes: F64, image: Image, t: float
    ) -> list[tuple[int, int]]:
        if not lost:
            return []
        gate = self.gate(lost, boxes, t)
        rows, cols = np.flatnonzero(gate.any(axis=1)), np.flatnonzero(gate.any(axis=0))
        if rows.size == 0:
            return []
        track_emb = np.stack([self._embedding(lost[r]) for r in rows])
        box_emb = self.embed(np.stack([crop_person(image, boxes[c]) for c in cols]))
        cost = cosine_distance(track_emb, box_emb)
        cost[~gate[np.ix_(rows, cols)]] = np.inf
        pairs, _, _ = assign(np.where(np.isfinite(cost), cost, 1e3), self.max_distance)
        return [(int(rows[r]), int(cols[c])) for r, c in pairs if self._clear(cost, r, c)]

    def _clear(self, cost: npt.NDArray[np.float64], r: int, c: int) -> bool:
        """Whether pair (r, c) beats every other candidate of its row and column by margin."""
        others = np.concatenate([np.delete(cost[r], c), np.delete(cost[:, c], r)])
        others = others[np.isfinite(others)]
        return others.size == 0 or bool(others.min() - cost[r, c] >= self.margin)

    def gate(self, lost: list[Track], boxes: F64, t: float) -> npt.NDArray[np.bool_]:
        """Which boxes each lost track could have walked to: within the radius of where it was
        last seen or of where its motion model puts it now."""
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        out = np.zeros((len(lost), len(boxes)), bool)
        for i, tr in enumerate(lost):
            seen = self._seen_at(tr, t)
            if seen is None:
                continue
            gap = t - tr.last_matched_t
            h = seen[3]
            radius = h * (self.gate_bodies + self.gate_growth * gap)
            near_seen = np.hypot(cx - seen[0], cy - seen[1]) <= radius
            near_now = np.hypot(cx - tr.mean[0], cy - tr.mean[1]) <= radius
            heights = boxes[:, 3] - boxes[:, 1]
            similar_size = np.abs(np.log(heights / max(h, 1.0))) < 0.5
            out[i] = (near_seen | near_now) & similar_size & (heights >= self.min_crop_px)
        return out

    def _embedding(self, tr: Track) -> npt.NDArray[np.float32]:
        if tr.embedding is None:
            assert tr.crop is not None
            tr.embedding = self.embed(tr.crop[None])[0]
        return tr.embedding
