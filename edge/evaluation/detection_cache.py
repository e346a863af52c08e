"""Detector output kept on disk, so the suite can judge tracker and counter changes without
running the detectors again (`storesense eval --suite --detections-cache DIR`).

``DetectionCache(root).wrap(detector, video, label)`` returns a ``CachedDetector``: a
``Detector`` on the same session whose call first looks the frame up in the cache and runs the
model only on a miss, keeping what it found. The pipeline is handed it like any detector and
does not know. Which frames are detected depends on the tracker (cadence, line focus), so a
cache filled by one version of the tracker may lack frames another version asks for: those
are detected and added.

A stale entry must never be replayed. One file holds one (video, model, zoom, detector
settings) and is named after the hash of everything that changes the detector's output: the
model file's sha256, the video's content (size and sha256: a copy or a touched file with the
same bytes is the same video, edge/evaluation/file_stamp.py), the zoom, the score
threshold, NMS IoU, the layout and canvas (fixed export or fitted), onnxruntime's threads,
the source of ``edge/vision/detector.py`` and the versions of onnxruntime, OpenCV and numpy.
The key is also stored inside the file and compared on load. Within a file a frame is found
by the sha256 of its pixels (and size, and the frame size a pre-scaled image stands for), not
by its index: a decoder that hands out other pixels for the same frame is a miss, not a
replay of another image's boxes.

Files are npz, written whole to a temporary name and renamed over the old one, so an
interrupted run leaves the previous file or the new one, never half of one. A file that does
not load (truncated, foreign) is reported and treated as empty, then rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.evaluation.file_stamp import content_stamp
from edge.vision import detector as detector_module
from edge.vision.detections import Detections
from edge.vision.detector import TRIM_MARGIN, Detector

log = logging.getLogger(__name__)

# Bump when the file layout below changes: older files are then misses (their names differ).
FORMAT = 1
_DIGEST = 32  # bytes of a frame's sha256


def _detector_source_sha256() -> str:
    return hashlib.sha256(Path(detector_module.__file__).read_bytes()).hexdigest()


def detector_key(det: Detector) -> dict[str, Any]:
    """Everything about a detector that changes its boxes for a given image and zoom."""
    session = det.session
    return {
        "model": det.name,
        "sha256": det.sha256,
        "layout": asdict(det.layout),
        "score_threshold": det.score_threshold,
        "nms_iou": det.nms_iou,
        # the export's fixed input, or height and width freed for a fitted canvas
        "input_shape": [str(d) for d in session.get_inputs()[0].shape],
        "trim_margin": TRIM_MARGIN,
        "threads": session.get_session_options().intra_op_num_threads,
        "code": _detector_source_sha256(),
        "libraries": {"onnxruntime": ort.__version__, "opencv": cv2.__version__,
                      "numpy": np.__version__},
    }


def frame_digest(image: npt.NDArray[np.uint8], frame_hw: tuple[int, int] | None) -> bytes:
    """A frame's identity: its pixels, their shape, and the frame size they stand for."""
    h = hashlib.sha256(json.dumps([list(image.shape), str(image.dtype), frame_hw]).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


@dataclass
class CacheFile:
    """The cached detections of one (video, detector, zoom): frame digest -> Detections."""

    path: Path
    key: dict[str, Any]
    entries: dict[bytes, Detections] = field(default_factory=dict)
    added: int = 0  # entries not yet written

    @classmethod
    def open(cls, root: Path, label: str, key: dict[str, Any]) -> CacheFile:
        text = json.dumps(key, sort_keys=True)
        name = f"{label}-{key['detector']['model']}-z{key['zoom']:g}-"
        name += hashlib.sha256(text.encode()).hexdigest()[:16] + ".npz"
        f = cls(root / name, key)
        if f.path.exists():
            f.entries = f._load(text)
        return f

    def _load(self, text: str) -> dict[bytes, Detections]:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                stored = str(z["key"])
                digests, counts = z["digests"], z["counts"]
                boxes, scores, classes = z["boxes"], z["scores"], z["class_id"]
            ends = np.cumsum(counts)
            if len(digests) != len(counts) or (ends[-1] if len(ends) else 0) != len(boxes):
                raise ValueError("entries and boxes disagree")
            entries = {
                d.tobytes(): Detections(boxes[a:b], scores[a:b], classes[a:b])
                for d, a, b in zip(digests, ends - counts, ends, strict=True)
            }
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            log.warning("detections cache %s does not load (%s): ignored, will be rewritten",
                        self.path, e)
            return {}
        if stored != text:
            log.warning("detections cache %s was written for other settings: ignored, will be "
                        "rewritten", self.path)
            return {}
        return entries

    def get(self, digest: bytes) -> Detections | None:
        d = self.entries.get(digest)
        # a copy, as a detector hands out fresh arrays on every call
        return None if d is None else Detections(d.xyxy.copy(), d.confidence.copy(),
                                                 d.class_id.copy())

    def put(self, digest: bytes, dets: Detections) -> None:
        self.entries[digest] = dets
        self.added += 1

    def save(self) -> None:
        """Write every entry, if any is new: to a temporary file, then renamed over the old."""
        if not self.added:
            return
        items = list(self.entries.items())
        key = np.array(json.dumps(self.key, sort_keys=True))
        digests = np.frombuffer(b"".join(k for k, _ in items), np.uint8).reshape(-1, _DIGEST)
        counts = np.array([len(d) for _, d in items], np.int64)
        boxes = np.concatenate([d.xyxy for _, d in items]).reshape(-1, 4)
        scores = np.concatenate([d.confidence for _, d in items])
        classes = np.concatenate([d.class_id for _, d in items])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as out:
                np.savez(out, key=key, digests=digests, counts=counts, boxes=boxes,
                         scores=scores, class_id=classes)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self.added = 0


class CachedDetector(Detector):
    """``inner``'s session and settings, with its output replayed from the cache where the
    frame, zoom and settings were seen before."""

    def __init__(self, inner: Detector, root: Path, video: Path, label: str) -> None:
        super().__init__(inner.session, inner.name, inner.sha256, inner.layout,
                         score_threshold=inner.score_threshold, nms_iou=inner.nms_iou)
        self.root, self.label = root, label
        self._key = {"format": FORMAT, "video": content_stamp(video),
                     "detector": detector_key(inner)}
        self._files: dict[float, CacheFile] = {}
        self.replayed = 0
        self.detected = 0

    def file(self, zoom: float) -> CacheFile:
        if zoom not in self._files:
            self._files[zoom] = CacheFile.open(self.root, self.label, {**self._key, "zoom": zoom})
        return self._files[zoom]

    def __call__(
        self,
        image_bgr: npt.NDArray[np.uint8],
        frame_hw: tuple[int, int] | None = None,
        *,
        zoom: float = 1.0,
    ) -> Detections:
        cache = self.file(zoom)
        digest = frame_digest(image_bgr, frame_hw)
        found = cache.get(digest)
        if found is not None:
            self.replayed += 1
            return found
        dets = super().__call__(image_bgr, frame_hw, zoom=zoom)
        cache.put(digest, dets)
        self.detected += 1
        return dets

    def save(self) -> None:
        for f in self._files.values():
            f.save()


class DetectionCache:
    """A folder of cached detector output, one file per (video, model, zoom, settings)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def wrap(self, detector: Detector, video: Path, label: str) -> CachedDetector:
        """``detector`` for the frames of ``video``; ``label`` names its files (readable only:
        the key is in the hash)."""
        return CachedDetector(detector, self.root, video, label)

    def wrap_pair(
        self, detectors: tuple[Detector, Detector | None], video: Path, label: str
    ) -> tuple[CachedDetector, CachedDetector | None]:
        """The camera's detectors (cheap or pinned, crowd or None), each cached."""
        cheap, crowd = detectors
        return (self.wrap(cheap, video, label),
                None if crowd is None else self.wrap(crowd, video, label))
