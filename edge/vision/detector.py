"""Person detection with the YOLOX family (onnxruntime): letterbox, decode, NMS.

Both YOLOX graphs we ship are decoded here and nowhere else; they differ only in input size,
colour order, normalisation and which class column is "person" (see models/MANIFEST.md).

The graphs are exported with a fixed square-ish input, but they are fully convolutional (their
only reshapes are [1, C, -1] and their upsampling is by scale), so the input's height and width
are freed when the session is built and a frame is letterboxed into the smallest canvas, in
multiples of the largest stride, that holds it at the trained scale plus ``TRIM_MARGIN`` of
padding: a 1080p frame runs at 416x320 instead of 416x416, and the padding rows it skips
carried no image. The verified file on disk is what is loaded; only the in-memory copy is
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from edge.vision.detections import Detections
from models import registry
from models.registry import AUTO_DETECTORS
from storesense.errors import ModelError
from storesense.schema import ModelInfo

# The cheap detector (yolox_nano: COCO, Apache-2.0, open data) and the crowd detector
# (bytetrack_nano_mot17: finds dense, small, half-hidden people; its training data, CrowdHuman
# and MOT17, are licensed for non-commercial research: models/manifest.toml).
DEFAULT_MODEL, CROWD_MODEL = AUTO_DETECTORS
AUTO = "auto"  # both, the camera's profile chosen from what it sees (edge/vision/profile.py)
_STRIDES = (8, 16, 32)
_PAD = 114
# Padding kept below (or beside) the image in a fitted canvas: two cells of the coarsest
# stride, so people at the frame's edge still have padding around them as in the square
# letterbox; with none, boxes touching the edge moved (IoU 0.65 against the square on a sample).
TRIM_MARGIN = 64


@dataclass(frozen=True)
class YoloxLayout:
    """What distinguishes one YOLOX export from another."""

    input_hw: tuple[int, int]  # the export's input: the scale a frame is letterboxed at
    rgb_normalised: bool  # RGB, /255, ImageNet mean/std (ByteTrack) vs raw BGR (YOLOX COCO)
    person_column: int  # index of the person probability in the output row
    default_score: float  # lowest score kept: ByteTrack's second stage wants the low boxes
    # Whether a closer look is probed for what the trained scale misses (edge/vision/zoom.py).
    # Not for the crowd model: at its own canvas it finds 0.90 or more of its zoom-2 people
    # on every row of the suite, and zoomed it cost MOT17-09 3.6 times the time (3.9
    # frames/s) and counts (docs/accuracy.md, "Zoom from what zoom 1 misses"); its zoom
    # follows the heights' rule alone.
    zoom_probed: bool = True


LAYOUTS: dict[str, YoloxLayout] = {
    "yolox_nano": YoloxLayout((416, 416), False, 5, 0.1),
    "bytetrack_nano_mot17": YoloxLayout((608, 1088), True, 5, 0.1, zoom_probed=False),
}
Grid = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]  # cells (n, 2), strides (n, 1)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


def _ceil_to(x: float, step: int) -> int:
    return int(-(-round(x) // step) * step)


def make_grid(input_hw: tuple[int, int]) -> Grid:
    """Cell offsets (n, 2) and strides (n, 1) in the output's row order (level, y, x)."""
    cells, strides = [], []
    for s in _STRIDES:
        gh, gw = input_hw[0] // s, input_hw[1] // s
        ys, xs = np.mgrid[0:gh, 0:gw]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((gh * gw, 1), s))
    return (
        np.concatenate(cells).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


def nms(
    xyxy: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float
) -> npt.NDArray[np.int64]:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = np.argsort(-scores, kind="stable")
    areas = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(xyxy[i, 0], xyxy[rest, 0])
        yy1 = np.maximum(xyxy[i, 1], xyxy[rest, 1])
        xx2 = np.minimum(xyxy[i, 2], xyxy[rest, 2])
        yy2 = np.minimum(xyxy[i, 3], xyxy[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        union = areas[i] + areas[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-9)]
    return np.asarray(keep, np.int64)


def decode_yolox(
    raw: npt.NDArray[np.float32],
    grid: Grid,
    person_column: int,
    ratio: float,
    frame_hw: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
) -> Detections:
    """Raw YOLOX rows (n, 5 + classes) -> person boxes in frame pixels, clipped, after NMS."""
    scores = raw[:, 4] * raw[:, person_column]
    idx = np.flatnonzero(scores > score_threshold)
    if idx.size == 0:
        return Detections.empty()
    rows, cells, strides = raw[idx], grid[0][idx], grid[1][idx]
    centre = (rows[:, :2] + cells) * strides
    half = np.exp(rows[:, 2:4]) * strides * 0.5
    xyxy = np.concatenate([centre - half, centre + half], axis=1) / ratio
    h, w = frame_hw
    np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
    sc = scores[idx]
    keep = nms(xyxy.astype(np.float32), sc.astype(np.float32), nms_iou)
    return Detections(
        xyxy[keep].astype(np.float32), sc[keep].astype(np.float32), np.zeros(len(keep), np.int64)
    )


class Detector:
    """Callable person detector: BGR frame in, person Detections (frame pixels) out."""

    def __init__(
        self,
        session: ort.InferenceSession,
        name: str,
        sha256: str,
        layout: YoloxLayout,
        *,
        score_threshold: float | None = None,
        nms_iou: float = 0.6,
    ) -> None:
        if score_threshold is not None and not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        self.session, self.name, self.sha256, self.layout = session, name, sha256, layout
        self.score_threshold = layout.default_score if score_threshold is None else score_threshold
        self.nms_iou = nms_iou
        self._input = session.get_inputs()[0].name
        # A graph whose input is still fixed (dims not freed) only takes the full size.
        self._trim = not all(isinstance(d, int) for d in session.get_inputs()[0].shape[2:])
        self._grids: dict[tuple[int, int], Grid] = {}
        self._canvases: dict[tuple[int, int], npt.NDArray[np.uint8]] = {}

    def canvas_hw(self, nh: int, nw: int, zoom: float = 1.0) -> tuple[int, int]:
        """The letterbox canvas for a frame scaled to (nh, nw) at this zoom."""
        ih, iw = self.layout.input_hw
        if not self._trim:
            return ih, iw
        s = _STRIDES[-1]
        return (min(_ceil_to(ih * zoom, s), _ceil_to(nh + TRIM_MARGIN, s)),
                min(_ceil_to(iw * zoom, s), _ceil_to(nw + TRIM_MARGIN, s)))

    def ratio(self, height: int, width: int, zoom: float = 1.0) -> float:
        """Scale from frame to canvas: the trained scale times the zoom, but a zoom never
        enlarges a frame past its own pixels (that adds cost, not detail)."""
        ih, iw = self.layout.input_hw
        base = min(ih / height, iw / width)
        return min(base * zoom, max(base, 1.0))

    def preprocess(
        self, image_bgr: npt.NDArray[np.uint8], zoom: float = 1.0
    ) -> tuple[npt.NDArray[np.float32], float]:
        """Top-left letterbox into a reused canvas; returns the NCHW tensor and the scale."""
        if zoom != 1.0 and not self._trim:
            raise ValueError(f"zoom {zoom}: this detector's input size is fixed (fit_canvas off)")
        h, w = image_bgr.shape[:2]
        r = self.ratio(h, w, zoom)
        nh, nw = round(h * r), round(w * r)
        hw = self.canvas_hw(nh, nw, zoom)
        canvas = self._canvases.get(hw)
        if canvas is None:
            canvas = self._canvases[hw] = np.full((*hw, 3), _PAD, np.uint8)
        canvas[...] = _PAD
        canvas[:nh, :nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        if self.layout.rgb_normalised:
            x = (canvas[:, :, ::-1].astype(np.float32) - _MEAN) / _STD
        else:
            x = canvas.astype(np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), r

    def _grid(self, hw: tuple[int, int]) -> Grid:
        if hw not in self._grids:
            self._grids[hw] = make_grid(hw)
        return self._grids[hw]

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) a frame of this size is scaled to inside the letterbox.

        A source that can scale while it converts colour (FFmpeg's swscale) hands the detector
        frames of this size, with ``frame_hw`` giving the original size (see ``__call__``).
        """
        ih, iw = self.layout.input_hw
        r = min(ih / height, iw / width)
        return round(width * r), round(height * r)

    def __call__(
        self,
        image_bgr: npt.NDArray[np.uint8],
        frame_hw: tuple[int, int] | None = None,
        *,
        zoom: float = 1.0,
    ) -> Detections:
        """Person boxes in frame pixels.

        ``frame_hw``: the (height, width) of the frame when ``image_bgr`` is a scaled-down copy
        of it (pre-resized input); boxes are mapped back to the frame's pixels. ``zoom``: how
        much larger than the trained scale the image is seen (see ``ratio``).
        """
        tensor, r = self.preprocess(image_bgr, zoom)
        raw = self.session.run(None, {self._input: tensor})[0][0]
        ih, iw = image_bgr.shape[:2]
        dets = decode_yolox(
            raw,
            self._grid((tensor.shape[2], tensor.shape[3])),
            self.layout.person_column,
            r,
            (ih, iw),
            self.score_threshold,
            self.nms_iou,
        )
        if frame_hw is None or frame_hw == (ih, iw) or len(dets) == 0:
            return dets
        fh, fw = frame_hw
        scale = np.array([fw / iw, fh / ih, fw / iw, fh / ih], np.float32)
        return Detections(dets.xyxy * scale, dets.confidence, dets.class_id)

    def model_infos(self) -> list[ModelInfo]:
        return [ModelInfo(name=self.name, sha256=self.sha256)]


def session_options(threads: int) -> ort.SessionOptions:
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def open_session(
    name_or_path: str, models_dir: str | Path | None, threads: int, *, free_hw: bool = False
) -> tuple[ort.InferenceSession, str, str]:
    """Verified model -> (session, manifest name, sha256). A file path must be pinned too.

    ``free_hw``: make the input's height and width (and the output's row count) symbolic.
    """
    path, digest = registry.resolve_path(name_or_path, models_dir)
    name = next(s.name for s in registry.manifest().values() if s.sha256 == digest)
    try:
        model: str | bytes = _with_free_hw(path) if free_hw else str(path)
        sess = ort.InferenceSession(
            model, session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime and onnx raise their own untyped errors
        raise ModelError(f"model {name}: onnxruntime cannot load {path}: {e}") from e
    return sess, name, digest


def _with_free_hw(path: Path) -> bytes:
    graph = onnx.load(str(path))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    for dim, label in ((dims[2], "height"), (dims[3], "width")):
        dim.dim_param = label  # replaces dim_value (a protobuf oneof)
    graph.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "rows"
    del graph.graph.value_info[:]  # intermediate shapes were inferred for the fixed size
    data: bytes = graph.SerializeToString()
    return data


def load_detector(
    model: str = DEFAULT_MODEL,
    *,
    models_dir: str | Path | None = None,
    threads: int = 1,
    score_threshold: float | None = None,
    fit_canvas: bool = True,
) -> Detector:
    """A person detector from a manifest name or a pinned file path.

    ``fit_canvas=False`` keeps the export's fixed input size (the reference the manifest's
    sample outputs were measured with).
    """
    sess, name, digest = open_session(model, models_dir, threads, free_hw=fit_canvas)
    if name not in LAYOUTS:
        raise ModelError(f"model {name} is not a person detector; use one of {sorted(LAYOUTS)}")
    return Detector(sess, name, digest, LAYOUTS[name], score_threshold=score_threshold)


def load_detectors(
    model: str = AUTO, *, models_dir: str | Path | None = None, threads: int = 1
) -> tuple[Detector, Detector | None]:
    """(the cheap or pinned detector, the crowd detector or None) for a camera.

    ``auto`` loads both and lets the camera choose from what it sees; a model name (or pinned
    file) runs that detector alone: ``yolox_nano`` keeps to the detector trained on open data.
    """
    if model != AUTO:
        return load_detector(model, models_dir=models_dir, threads=threads), None
    return (
        load_detector(DEFAULT_MODEL, models_dir=models_dir, threads=threads),
        load_detector(CROWD_MODEL, models_dir=models_dir, threads=threads),
    )
