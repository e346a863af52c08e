"""Age band and gender per visitor: YuNet face in the upper part of the person box, then the
OMZ age/gender model on the face crop, averaged over the track's life.

Privacy: a crop lives only inside ``observe()``; what is kept per track is a running sum of
age and of P(male), and what leaves is one age band and one gender per finished track.
Budget: at most ``max_crops_per_frame`` person crops per frame, only for tracks that still
lack ``samples_wanted`` face samples, biggest boxes first, so demographics cost a bounded
few milliseconds per frame. The model is meant for adults 18-75 (its maker's statement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.vision.detections import Detections
from edge.vision.detector import nms, open_session
from storesense.schema import AGE_BANDS, ModelInfo

F32 = npt.NDArray[np.float32]
FACE_MODEL = "yunet_dynamic"
AGE_GENDER_MODEL = "age_gender_retail_0013"
_BAND_LOWER = (0, 25, 35, 45, 55, 65)


def age_band(age: float) -> str:
    i = int(np.searchsorted(_BAND_LOWER, age, side="right")) - 1
    return AGE_BANDS[max(0, i)]


def decode_yunet(
    outputs: dict[str, F32], input_hw: tuple[int, int], threshold: float = 0.6, nms_iou: float = 0.3
) -> tuple[F32, F32, F32]:
    """YuNet outputs -> boxes xyxy (n, 4), scores (n,), landmarks (n, 10), in input pixels."""
    boxes, scores, kps = [], [], []
    for s in (8, 16, 32):
        gw = input_hw[1] // s
        cls = np.clip(outputs[f"cls_{s}"][0, :, 0], 0, 1)
        obj = np.clip(outputs[f"obj_{s}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        idx = np.flatnonzero(score > threshold)
        if idx.size == 0:
            continue
        cell = np.stack([idx % gw, idx // gw], axis=1).astype(np.float32)
        b = outputs[f"bbox_{s}"][0, idx]
        centre = (cell + b[:, :2]) * s
        half = np.exp(b[:, 2:4]) * s / 2
        boxes.append(np.concatenate([centre - half, centre + half], axis=1))
        scores.append(score[idx])
        k = outputs[f"kps_{s}"][0, idx].reshape(-1, 5, 2)
        kps.append(((k + cell[:, None, :]) * s).reshape(-1, 10))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 10), np.float32)
    bx, sc, kp = np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps)
    keep = nms(bx.astype(np.float32), sc.astype(np.float32), nms_iou)
    return bx[keep].astype(np.float32), sc[keep].astype(np.float32), kp[keep].astype(np.float32)


def face_crop_box(face: F32, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Square crop centred on the face, side 1.2 x the longer face side, clipped to the frame."""
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    half = 0.6 * max(face[2] - face[0], face[3] - face[1])
    h, w = frame_hw
    return (
        int(max(0, round(cx - half))),
        int(max(0, round(cy - half))),
        int(min(w, round(cx + half))),
        int(min(h, round(cy + half))),
    )


class FaceModels:
    """YuNet (dynamic input) + age/gender, both verified through the model registry."""

    def __init__(self, models_dir: str | Path | None = None, threads: int = 1) -> None:
        self.face, self._face_name, self._face_sha = open_session(
            FACE_MODEL, models_dir, threads
        )
        self.age, self._age_name, self._age_sha = open_session(
            AGE_GENDER_MODEL, models_dir, threads
        )

    def model_infos(self) -> list[ModelInfo]:
        return [
            ModelInfo(name=self._face_name, sha256=self._face_sha),
            ModelInfo(name=self._age_name, sha256=self._age_sha),
        ]

    def detect_faces(
        self, image_bgr: npt.NDArray[np.uint8], max_side: int = 640
    ) -> tuple[F32, F32]:
        """Faces in an image (pixels of that image): boxes (n, 4) and scores, best first."""
        h, w = image_bgr.shape[:2]
        r = min(1.0, max_side / max(h, w))
        nh, nw = max(32, int(np.ceil(h * r / 32)) * 32), max(32, int(np.ceil(w * r / 32)) * 32)
        canvas = np.zeros((nh, nw, 3), np.uint8)  # pad, don't stretch: faces keep their shape
        canvas[: round(h * r), : round(w * r)] = cv2.resize(image_bgr, (round(w * r), round(h * r)))
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        names = [o.name for o in self.face.get_outputs()]
        outs = dict(zip(names, self.face.run(None, {"input": x}), strict=True))
        boxes, scores, _ = decode_yunet(outs, (nh, nw))
        return boxes / r, scores

    def age_gender(self, image_bgr: npt.NDArray[np.uint8], faces: F32) -> tuple[F32, F32]:
        """Ages in years and P(male) for face boxes in the image."""
        if len(faces) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        crops = []
        for f in faces:
            x1, y1, x2, y2 = face_crop_box(f, image_bgr.shape[:2])
            crops.append(
                cv2.resize(image_bgr[y1:y2, x1:x2], (62, 62), interpolation=cv2.INTER_LINEAR)
            )
        x = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
        age, prob = self.age.run(["fc3_a", "prob"], {"data": x})
        return age.reshape(-1) * 100.0, prob.reshape(-1, 2)[:, 1]


@dataclass
class _Samples:
    n: int = 0
    attempts: int = 0
    age_sum: float = 0.0
    male_sum: float = 0.0


@dataclass
class DemographicsEstimator:
    models: FaceModels
    max_crops_per_frame: int = 2
    samples_wanted: int = 3
    min_person_px: int = 80  # faces in smaller person boxes are too small for the model
    max_attempts: int = 40
    _tracks: dict[int, _Samples] = field(default_factory=dict)

    def model_infos(self) -> list[ModelInfo]:
        return self.models.model_infos()

    def observe(self, image_bgr: npt.NDArray[np.uint8], tracks: Detections) -> None:
        """Sample faces of a few tracks that still need them (the budget)."""
        if tracks.tracker_id is None or len(tracks) == 0:
            return
        h = tracks.xyxy[:, 3] - tracks.xyxy[:, 1]
        wanted = []
        for i, tid in enumerate(tracks.tracker_id.tolist()):
            s = self._tracks.setdefault(tid, _Samples())
            if (
                s.n < self.samples_wanted
                and s.attempts < self.max_attempts
                and h[i] >= self.min_person_px
            ):
                wanted.append((s.attempts, -float(h[i]), i))
        for _, _, i in sorted(wanted)[: self.max_crops_per_frame]:
            self._sample(image_bgr, tracks.xyxy[i], int(tracks.tracker_id[i]))

    def _sample(self, image: npt.NDArray[np.uint8], box: F32, tid: int) -> None:
        s = self._tracks[tid]
        s.attempts += 1
        x1, y1, x2, y2 = (int(v) for v in box)
        head = image[
            max(0, y1) : max(y1 + 1, y1 + int(0.4 * (y2 - y1))), max(0, x1) : max(x1 + 1, x2)
        ]
        if head.shape[0] < 16 or head.shape[1] < 16:
            return
        faces, _ = self.models.detect_faces(head, max_side=224)
        if len(faces) == 0:
            return
        ages, male = self.models.age_gender(head, faces[:1])
        s.n += 1
        s.age_sum += float(ages[0])
        s.male_sum += float(male[0])

    def end_track(self, track_id: int) -> tuple[str, str]:
        """(age band, gender) of a finished track; 'unknown' when no face was seen."""
        s = self._tracks.pop(track_id, None)
        if s is None or s.n == 0:
            return "unknown", "unknown"
        return age_band(s.age_sum / s.n), "male" if s.male_sum / s.n >= 0.5 else "female"


def load_demographics(
    models_dir: str | Path | None = None, threads: int = 1
) -> DemographicsEstimator:
    return DemographicsEstimator(FaceModels(models_dir, threads))


__all__ = [
    "DemographicsEstimator",
    "FaceModels",
    "age_band",
    "decode_yunet",
    "load_demographics",
    "ort",
]
