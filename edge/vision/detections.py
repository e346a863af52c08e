"""The one detections type that flows from detector to tracker to analytics.

One numpy array per field, validated on construction, so a shape bug fails where it is made
and not three modules later. Instances are treated as immutable: every operation returns a
new instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _check(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise ValueError(f"Detections.{name}: expected shape {shape}, got {arr.shape}")


@dataclass(frozen=True)
class Detections:
    """Boxes in frame pixels (x1, y1, x2, y2); tracker_id is set once a tracker has run."""

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IntArray | None = field(default=None)

    def __post_init__(self) -> None:
        if self.xyxy.ndim != 2 or self.xyxy.shape[1:] != (4,):
            raise ValueError(f"Detections.xyxy: expected shape (n, 4), got {self.xyxy.shape}")
        n = self.xyxy.shape[0]
        _check("confidence", self.confidence, (n,))
        _check("class_id", self.class_id, (n,))
        if self.tracker_id is not None:
            _check("tracker_id", self.tracker_id, (n,))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def from_arrays(
        cls,
        xyxy: npt.ArrayLike,
        confidence: npt.ArrayLike | None = None,
        class_id: npt.ArrayLike | None = None,
        tracker_id: npt.ArrayLike | None = None,
    ) -> Detections:
        """Convenience constructor that copies and casts plain lists or arrays."""
        box = np.asarray(xyxy, np.float32).reshape(-1, 4)
        n = len(box)
        conf = np.ones(n, np.float32) if confidence is None else np.asarray(confidence, np.float32)
        cls_ = np.zeros(n, np.int64) if class_id is None else np.asarray(class_id, np.int64)
        tid = None if tracker_id is None else np.asarray(tracker_id, np.int64)
        return cls(box.copy(), conf.copy(), cls_.copy(), None if tid is None else tid.copy())

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(
        self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice
    ) -> Detections:
        """Mask, index array or slice: a new instance holding copies of the selected rows."""
        return Detections(
            self.xyxy[index].copy(),
            self.confidence[index].copy(),
            self.class_id[index].copy(),
            None if self.tracker_id is None else self.tracker_id[index].copy(),
        )

    def with_tracker_id(self, tracker_id: npt.ArrayLike) -> Detections:
        return Detections(
            self.xyxy.copy(),
            self.confidence.copy(),
            self.class_id.copy(),
            np.asarray(tracker_id, np.int64).copy(),
        )

    def foot_points(self) -> FloatArray:
        """Bottom centre of each box: where a person stands on the floor."""
        return foot_points(self.xyxy).astype(np.float32)


def foot_points(xyxy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Bottom centre (x, y) of each (x1, y1, x2, y2) box: where a person stands on the floor."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) * 0.5, b[:, 3]], axis=1)
