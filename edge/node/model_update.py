"""Detector models sent by HQ: fetched from the gateway, verified, swapped, judged, kept or
rolled back, all by the node itself.

    paho thread:    retained ModelUpdateMessage -> validated -> queued (latest wins)
    update thread:  download (bounded) -> sha256 -> one session per camera -> staged
    camera thread:  at its next window boundary swaps the staged detector in, counts what
                    it finds for ``check_frames`` detector frames, then keeps it or swaps
                    the previous one back

A file that does not match its sha256 is never loaded; one onnxruntime cannot load, or that
raises when it runs, is refused; one whose detections per frame collapse against the model
it replaced is rolled back. Either way the reason goes into the device status
(``model_error``) and the sha256 is remembered, so the retained message is not retried at
every reconnect. The model kept is remembered too, and loaded again after a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import ssl
import threading
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import ValidationError

from edge.node.camera_worker import CameraWorker
from edge.node.config import ModelUpdateConfig
from edge.vision.detections import Detections
from edge.vision.detector import LAYOUTS, Detector, _with_free_hw, session_options
from storesense.config import describe_validation_error
from storesense.errors import ConfigError, ModelError
from storesense.schema import ModelUpdateMessage

log = logging.getLogger(__name__)

COUNTED_SCORE = 0.3  # a detection this confident counts towards the rate (the boxes below
# it are the tracker's second-stage candidates, many of them background)
PREVIOUS_FRAMES = 300  # the previous model's rate: over its last this many detector frames
STATE_FILE = "state.json"
REFUSED_KEPT = 100  # refused sha256s remembered, the latest
BASELINE_WAIT = 3  # window boundaries a swap waits for the running model to have a rate


class WatchedDetector(Detector):
    """A Detector that counts confident detections per call, and survives its own failure
    while on probation (a new model that loads but cannot run must not stop the camera)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recent: deque[int] = deque(maxlen=PREVIOUS_FRAMES)
        self.calls = 0
        self.failure: str | None = None
        self.on_probation = False

    @classmethod
    def wrap(cls, d: Detector) -> WatchedDetector:
        return cls(d.session, d.name, d.sha256, d.layout, score_threshold=d.score_threshold,
                   nms_iou=d.nms_iou)

    def __call__(self, image_bgr: npt.NDArray[np.uint8],
                 frame_hw: tuple[int, int] | None = None, *, zoom: float = 1.0) -> Detections:
        try:
            dets = super().__call__(image_bgr, frame_hw, zoom=zoom)
        except Exception as e:
            if not self.on_probation:
                raise
            self.failure = f"{type(e).__name__}: {e}"[:500]
            dets = Detections.empty()
        self.calls += 1
        self.recent.append(int((dets.confidence >= COUNTED_SCORE).sum()))
        return dets

    def rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0


def collapsed(new_rate: float, old_rate: float, ratio: float, min_rate: float) -> bool:
    """Whether a new model's detections per frame collapsed against the one it replaced.
    Only judged when the old one saw enough people: a quiet hour says nothing."""
    return old_rate >= min_rate and new_rate < ratio * old_rate


@dataclass
class Swap:
    """One camera's part of an update: the staged detector, then the one it replaced."""

    new: WatchedDetector
    old: WatchedDetector | None = None
    done: bool = False
    waited: int = 0  # window boundaries passed waiting for the running model's baseline
    verdict: str | None = None  # None while judging; "kept" or why it was rolled back


@dataclass
class Update:
    msg: ModelUpdateMessage
    swaps: dict[str, Swap] = field(default_factory=dict)


def parse_model_update(payload: bytes, store_id: str, device_id: str) -> ModelUpdateMessage:
    try:
        msg = ModelUpdateMessage.model_validate_json(payload)
    except ValidationError as e:
        raise ConfigError(f"model update invalid: {describe_validation_error(e)}") from e
    if (msg.store_id, msg.device_id) != (store_id, device_id):
        raise ConfigError(f"model update is for {msg.store_id}/{msg.device_id}, this is "
                          f"{store_id}/{device_id}")
    if msg.name not in LAYOUTS:
        raise ConfigError(f"model update {msg.update_id}: {msg.name!r} is no detector this "
                          f"node can decode; known: {sorted(LAYOUTS)}")
    return msg


def fetch_model(cfg: ModelUpdateConfig, msg: ModelUpdateMessage, directory: Path) -> Path:
    """The verified file ``<sha256>.onnx`` in ``directory``: downloaded unless already there.
    A file longer than announced, or with another sha256, is deleted and never loaded."""
    target = directory / f"{msg.sha256}.onnx"
    if target.is_file() and _sha256(target) == msg.sha256:
        return target
    if msg.bytes > cfg.max_bytes:
        raise ModelError(f"model {msg.update_id}: {msg.bytes} bytes, more than max_bytes "
                         f"{cfg.max_bytes}")
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / f"{msg.sha256}.part"
    url = cfg.gateway_url.rstrip("/") + msg.url  # a path on the configured gateway only
    ctx = ssl.create_default_context(cafile=str(cfg.ca_file)) if cfg.ca_file else None
    h = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(url, timeout=cfg.timeout_s, context=ctx) as r, \
                part.open("wb") as f:
            while block := r.read(1 << 20):
                got += len(block)
                if got > msg.bytes:
                    raise ModelError(f"model {msg.update_id}: the gateway sent more than the "
                                     f"{msg.bytes} bytes announced")
                h.update(block)
                f.write(block)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise ModelError(f"model {msg.update_id}: download failed: {e}") from e
    except ModelError:
        part.unlink(missing_ok=True)
        raise
    if h.hexdigest() != msg.sha256:
        part.unlink(missing_ok=True)
        raise ModelError(f"model {msg.update_id}: sha256 {h.hexdigest()} does not match "
                         f"{msg.sha256}; not loaded")
    os.replace(part, target)
    return target


def load_watched(path: Path, msg: ModelUpdateMessage, threads: int) -> WatchedDetector:
    """A detector from a verified file, decoded as ``msg.name``; ModelError if it cannot be
    loaded (the caller checked the sha256: this file is not pinned in the manifest)."""
    try:
        sess = ort.InferenceSession(_with_free_hw(path), session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnx and onnxruntime raise their own untyped errors
        raise ModelError(f"model {msg.update_id}: cannot be loaded: {e}"[:1500]) from e
    return WatchedDetector(sess, msg.name, msg.sha256, LAYOUTS[msg.name])


class ModelUpdater:
    """Takes model messages for this device and carries each through to kept or rolled back."""

    def __init__(self, cfg: ModelUpdateConfig, store_id: str, device_id: str,
                 workers: dict[str, CameraWorker], directory: Path, threads: int) -> None:
        self.cfg, self.store_id, self.device_id = cfg, store_id, device_id
        self.workers, self.dir, self.threads = workers, directory, threads
        self.error: str | None = None
        self.on_event: Any = lambda: None  # the node publishes a status at once
        self._queue: queue.Queue[ModelUpdateMessage | None] = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._update: Update | None = None
        self._state = self._load_state()
        for w in workers.values():
            self._watch(w)
        self._thread = threading.Thread(target=self._run, name="model-update", daemon=True)

    # ---------------------------------------------------------------- state on disk

    def _load_state(self) -> dict[str, Any]:
        path = self.dir / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = None
        if not (isinstance(state, dict) and isinstance(state.get("refused"), dict)
                and isinstance(state.get("kept"), dict | None)):
            if path.exists():  # damaged: start afresh rather than stop the node
                log.warning("ignoring damaged %s", path)
            return {"kept": None, "refused": {}}
        return state

    def _save_state(self) -> None:
        # the update thread (refusals) and camera threads (verdicts) both write it
        with self._state_lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / (STATE_FILE + ".tmp")
            tmp.write_text(json.dumps(self._state))
            os.replace(tmp, self.dir / STATE_FILE)

    # ---------------------------------------------------------------- threads

    def start(self) -> None:
        kept = self._state.get("kept")
        if kept:  # the model kept before a restart: load it again, judged no more
            try:
                self._stage(ModelUpdateMessage.model_validate(kept), judge=False)
            except (ValidationError, ModelError) as e:
                log.error("model kept before the restart cannot be used: %s", e)
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):  # a message is waiting: the thread is a daemon
            self._queue.put_nowait(None)

    def offer(self, payload: bytes) -> None:
        """From paho's thread: a retained model message (empty: HQ cleared it)."""
        if not payload:
            return
        try:
            msg = parse_model_update(payload, self.store_id, self.device_id)
        except ConfigError as e:
            self._refused(None, str(e))
            return
        if (why := self._state["refused"].get(msg.sha256)) is not None:
            self.error = why  # refused before (perhaps before a restart): not tried again
            self.on_event()
            return
        kept = self._state.get("kept") or {}
        if msg.sha256 in (self._running_sha(), kept.get("sha256")):
            return
        with contextlib.suppress(queue.Empty):  # latest wins: one still waiting is replaced
            self._queue.get_nowait()
        self._queue.put_nowait(msg)

    def _running_sha(self) -> str | None:
        w = next(iter(self.workers.values()))
        det = getattr(w.pipeline, "detector", None)
        return getattr(det, "sha256", None)

    def _run(self) -> None:
        while (msg := self._queue.get()) is not None:
            try:
                path = fetch_model(self.cfg, msg, self.dir)
                self._stage(msg, judge=True, path=path)
            except ModelError as e:
                self._refused(msg, str(e))

    def _stage(self, msg: ModelUpdateMessage, *, judge: bool, path: Path | None = None) -> None:
        """One session per camera (a Detector keeps per-call buffers), handed to each camera
        thread to swap in at its next window boundary."""
        path = path or self.dir / f"{msg.sha256}.onnx"
        if path.is_file() and _sha256(path) != msg.sha256:
            raise ModelError(f"model {msg.update_id}: {path} changed on disk")
        swaps = {cam: Swap(load_watched(path, msg, self.threads)) for cam in self.workers}
        for s in swaps.values():
            s.new.on_probation = judge
            if not judge:
                s.verdict = "kept"
        with self._lock:
            self._update = Update(msg, swaps)
        log.info("model %s (%s, sha256 %s) loaded; swapping at each camera's next window",
                 msg.update_id, msg.name, msg.sha256[:12])

    def _refused(self, msg: ModelUpdateMessage | None, reason: str) -> None:
        log.error("model update refused: %s", reason)
        self.error = reason[:2000]
        if msg is not None:
            refused = self._state["refused"]
            refused[msg.sha256] = reason[:500]
            for old in list(refused)[:-REFUSED_KEPT]:  # oldest first (dicts keep order)
                del refused[old]
            self._save_state()
        self.on_event()

    # ---------------------------------------------------------------- camera threads

    def _watch(self, w: CameraWorker) -> None:
        det = getattr(w.pipeline, "detector", None)
        if isinstance(det, Detector) and not isinstance(det, WatchedDetector):
            w.pipeline.detector = WatchedDetector.wrap(det)  # type: ignore[attr-defined]
        w.before_frame = lambda t, w=w: self._before_frame(w, t)

    def _before_frame(self, w: CameraWorker, t: float) -> None:
        with self._lock:
            update = self._update
        if update is None or (swap := update.swaps.get(w.camera_id)) is None:
            return
        pipeline: Any = w.pipeline
        if not swap.done:
            if pipeline.windows.is_open and not pipeline.windows.due(t):
                return  # not at a window boundary yet
            running = pipeline.detector
            if swap.new.on_probation and isinstance(running, WatchedDetector) \
                    and running.calls < self.cfg.check_frames and swap.waited < BASELINE_WAIT:
                # the running model's rate is the baseline: let it have one first (a camera
                # in its crowd profile seldom runs it: after a few windows, swap unjudged)
                swap.waited += 1
                return
            swap.old, pipeline.detector, swap.done = pipeline.detector, swap.new, True
            log.info("camera %s: detector %s swapped in", w.camera_id, update.msg.update_id)
            self.on_event()
            if swap.verdict is not None:  # kept before a restart: nothing to judge
                self._settle(update)
            return
        if swap.verdict is None and (verdict := self._judge(swap)) is not None:
            swap.verdict = verdict
            if verdict != "kept":
                pipeline.detector = swap.old
            self._settle(update)

    def _judge(self, swap: Swap) -> str | None:
        new, old = swap.new, swap.old
        assert old is not None
        if new.failure is not None:
            return f"fails when it runs: {new.failure}"
        if new.calls < self.cfg.check_frames:
            return None
        rate_new, rate_old = new.rate(), old.rate()
        if collapsed(rate_new, rate_old, self.cfg.collapse_ratio, self.cfg.min_rate):
            return (f"detection rate collapsed: {rate_new:.2f} per frame over its first "
                    f"{new.calls} detector frames against {rate_old:.2f} before")
        new.on_probation = False
        return "kept"

    def _settle(self, update: Update) -> None:
        """Once every camera judged: keep the model, or roll every camera back."""
        verdicts = [s.verdict for s in update.swaps.values()]
        if None in verdicts:
            return
        bad = [f"camera {cam}: {s.verdict}" for cam, s in update.swaps.items()
               if s.verdict != "kept"]
        with self._lock:
            if self._update is not update:
                return  # another camera settled it, or a newer update replaced it
            self._update = None
        if bad:
            for cam, s in update.swaps.items():
                if s.verdict == "kept" and s.old is not None:
                    self.workers[cam].pipeline.detector = s.old  # type: ignore[attr-defined]
            self._refused(update.msg, f"model {update.msg.update_id} rolled back: "
                          + "; ".join(bad))
            return
        self.error = None
        self._state["kept"] = update.msg.model_dump()
        self._save_state()
        log.info("model %s kept", update.msg.update_id)
        self.on_event()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
