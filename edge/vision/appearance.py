"""Person appearance embeddings for re-identification inside the tracker.

An embedding describes how a person looks (clothes, build) so the tracker can tell, after an
occlusion, whether a new box is the person it lost or a stranger. It is computed from pixels
and is as personal as a face crop: it lives in process memory, is dropped with its track, and
no message field can hold one (storesense/schema.py has no array-of-float field).

The model (OpenVINO person-reidentification-retail-0248, models/manifest.toml) takes one
128 x 256 BGR crop, raw 0..255, NHWC. Its export fixes the batch at 1 and bakes that 1 into
its reshapes, so crops go through one at a time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.vision.detector import session_options
from models import registry
from models.registry import REID_MODEL
from storesense.errors import ModelError
from storesense.schema import ModelInfo

DEFAULT_REID_MODEL = REID_MODEL
CROP_HW = (256, 128)  # the model's input: height, width
EMBED_DIM = 256
F32 = npt.NDArray[np.float32]


def crop_person(image_bgr: npt.NDArray[np.uint8], box: npt.NDArray[np.floating]) -> npt.NDArray[
    np.uint8
]:
    """The box's pixels resized to the model's input; a box outside the frame gives grey."""
    h, w = image_bgr.shape[:2]
    x1, y1 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
    x2, y2 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return np.full((*CROP_HW, 3), 114, np.uint8)
    out = cv2.resize(
        image_bgr[y1:y2, x1:x2], (CROP_HW[1], CROP_HW[0]), interpolation=cv2.INTER_LINEAR
    )
    return np.asarray(out, np.uint8)


def cosine_distance(a: F32, b: F32) -> npt.NDArray[np.float64]:
    """1 - cosine similarity of L2-normalised rows: 0 same look, up to 2 opposite."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return 1.0 - (a.astype(np.float64) @ b.astype(np.float64).T)


class AppearanceModel:
    """Callable: crops (n, 256, 128, 3) uint8 -> L2-normalised embeddings (n, 256)."""

    def __init__(self, session: ort.InferenceSession, name: str, sha256: str) -> None:
        self.session, self.name, self.sha256 = session, name, sha256
        self._input = session.get_inputs()[0].name
        self.crops_embedded = 0  # the cost: how many crops have gone through the model

    def __call__(self, crops: npt.NDArray[np.uint8]) -> F32:
        if len(crops) == 0:
            return np.zeros((0, EMBED_DIM), np.float32)
        if crops.shape[1:] != (*CROP_HW, 3):
            raise ValueError(f"crops must be (n, {CROP_HW[0]}, {CROP_HW[1]}, 3), got {crops.shape}")
        x = crops.astype(np.float32)
        out = np.concatenate([self.session.run(None, {self._input: x[i : i + 1]})[0]
                              for i in range(len(x))])
        self.crops_embedded += len(crops)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        unit: F32 = (out / np.maximum(norm, 1e-9)).astype(np.float32)
        return unit

    def model_infos(self) -> list[ModelInfo]:
        return [ModelInfo(name=self.name, sha256=self.sha256)]


def load_appearance(
    model: str = DEFAULT_REID_MODEL, *, models_dir: str | Path | None = None, threads: int = 1
) -> AppearanceModel:
    """The re-identification model from a manifest name or a pinned file path, verified."""
    path, digest = registry.resolve_path(model, models_dir)
    spec = next(s for s in registry.manifest().values() if s.sha256 == digest)
    if spec.family != "reid":
        raise ModelError(f"model {spec.name} is not a re-identification model")
    try:
        sess = ort.InferenceSession(
            str(path), session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime and onnx raise their own untyped errors
        raise ModelError(f"model {spec.name}: onnxruntime cannot load {path}: {e}") from e
    return AppearanceModel(sess, spec.name, digest)
