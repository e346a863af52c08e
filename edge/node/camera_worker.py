"""One camera's thread: source.read -> pipeline.process -> closed windows to a sink.

The worker is handed its parts (a source factory and a pipeline), so tests drive it with
the real pipeline on a real video file without the rest of the node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from edge.node.clock import ClockWatch, disagreement
from edge.node.outbox import write_error
from edge.node.status import camera_status
from storesense.schema import (
    AnalyticsConfig,
    CameraConfigMessage,
    CameraState,
    CameraStatus,
    MessageError,
    ModelInfo,
    WindowAggregate,
)

log = logging.getLogger(__name__)


class Frame(Protocol):
    @property
    def image(self) -> Any: ...
    @property
    def t(self) -> float: ...


class Source(Protocol):
    """edge.vision.sources.FrameSource as the node uses it."""

    state: CameraState
    since: float
    last_error: str | None
    dropped_frames: int
    frames_total: int
    fps: float
    ended: bool

    def read(self, timeout: float | None = None) -> Frame | None: ...
    def close(self) -> None: ...


class Pipeline(Protocol):
    """edge.pipeline.CameraPipeline as the node uses it."""

    def process(
        self, image: Any, t: float, *, decoded: bool = True
    ) -> list[WindowAggregate]: ...
    def detects_next(self) -> bool: ...
    def needs_frame(self, ahead: int) -> bool: ...
    def detects_on_cadence(self) -> bool: ...
    def reconfigure(self, config: AnalyticsConfig) -> None: ...
    def flush(self, t: float) -> list[WindowAggregate]: ...
    def model_infos(self) -> list[ModelInfo]: ...


Sink = Callable[[WindowAggregate], None]
UNSAVED_MAX = 1000  # windows a camera holds in memory while the outbox cannot be written
SINK_RETRY_MAX_S = 60.0  # longest wait between two attempts to store held windows
CLOCK_NOTE_S = 600.0  # a clock step stays in the camera's last_error this long


class CameraWorker:
    """One camera: read, analyse, hand closed windows to the sink; survives source failures."""

    def __init__(
        self, camera_id: str, open_source: Callable[[], Source], pipeline: Pipeline,
        sink: Sink, *, live: bool, clock: Callable[[], float] = time.time,
        config_version: str | None = None, clock_watch: ClockWatch | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._open_source = open_source
        self.pipeline = pipeline
        self._sink = sink
        self._live = live  # frame times are wall clock, so lag behind the source is meaningful
        self._clock = clock
        # Live frames carry wall-clock times: a step of that clock closes the open window
        # (edge.node.clock); edge.analytics.windows keeps the windows after it from reusing a start.
        self._watch = clock_watch if live else None
        self._epoch = self._watch.epoch if self._watch is not None else 0
        self.clock_note: tuple[float, str] | None = None  # (monotonic time, text)
        self.source: Source | None = None
        self.open_error: str | None = None
        self.open_failed_since: float | None = None
        self.process_error: str | None = None
        self.lag_s = 0.0
        self.heartbeat = time.monotonic()
        self.config_version = config_version
        self.config_error: str | None = None
        self.applied: CameraConfigMessage | None = None
        # Called on the camera thread with the applied message, or None after a rejection.
        self.on_config_event: Callable[[CameraConfigMessage | None], None] = lambda m: None
        self._pending: CameraConfigMessage | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_t: float | None = None
        self.frames = 0  # processed by the pipeline
        self._unsaved: list[WindowAggregate] = []  # closed windows the sink refused so far
        self.sink_error: str | None = None
        self._sink_backoff_s = 0.0
        self._sink_retry_at = 0.0  # monotonic time of the next attempt after a failure
        self._rate_mark = (time.monotonic(), 0)  # for fps between two status calls
        # Optional, called on the camera thread: before a frame with its time (model updates
        # swap detectors at a window boundary), after it with the frame (installer page).
        self.before_frame: Callable[[float], None] | None = None
        self.after_frame: Callable[[Frame], None] | None = None
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def reconfigure(self, msg: CameraConfigMessage) -> None:
        """Queue a validated remote config; applied between frames on the camera thread."""
        with self._lock:
            self._pending = msg

    def reject_config(self, reason: str) -> None:
        log.warning("camera %s: %s", self.camera_id, reason)
        self.config_error = reason
        self.on_config_event(None)

    def processed_fps(self) -> float:
        """Frames processed per second since the previous call (status interval)."""
        now, frames = time.monotonic(), self.frames
        t0, f0 = self._rate_mark
        self._rate_mark = (now, frames)
        return (frames - f0) / (now - t0) if now > t0 else 0.0

    def status(self, publish_error: str | None = None) -> CameraStatus:
        """``publish_error``: why the broker refused this camera's windows, if it does."""
        failed_open = self.source is None and self.open_error is not None
        return camera_status(
            self.camera_id, self.source,
            state="failed" if failed_open else None,
            since=self.open_failed_since if failed_open else None,
            fps=self.processed_fps(), lag_s=self.lag_s,
            last_error=self.open_error if failed_open else (
                self.sink_error or publish_error or self.process_error or self._clock_note()),
            config_error=self.config_error, config_version=self.config_version,
        )

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                self._apply_pending_config()
                if self.source is None and not self._open():
                    self._stop.wait(2.0)  # the source factory failed: retry the open later
                    continue
                try:
                    if not self._step():
                        break
                except Exception as e:  # one bad frame must not end the camera for good
                    self.process_error = f"{type(e).__name__}: {e}"
                    log.exception("camera %s: processing failed", self.camera_id)
                    self._stop.wait(1.0)
            self._emit(self.pipeline.flush(self._flush_time()), now=True)
        finally:
            if self.source is not None:
                self.source.close()
            self.heartbeat = time.monotonic()

    def _open(self) -> bool:
        try:
            self.source = self._open_source()
        except Exception as e:  # a missing file or bad URL: report, keep retrying
            if self.open_error is None:
                self.open_failed_since = time.time()
            self.open_error = f"{type(e).__name__}: {e}"
            log.warning("camera %s: cannot open source: %s", self.camera_id, self.open_error)
            return False
        self.open_error = self.open_failed_since = None
        attach = getattr(self.source, "attach", None)
        if attach is not None:  # decode and convert only the frames the pipeline may detect on
            attach(self.pipeline.detects_next, self.pipeline.needs_frame,
                   self.pipeline.detects_on_cadence)
        return True

    def _step(self) -> bool:
        """One frame (or a read timeout). False when a non-looping file has ended."""
        assert self.source is not None
        frame = self.source.read(timeout=0.5)
        if frame is None:
            return not self.source.ended
        self._follow_clock()
        if self.before_frame is not None:
            self.before_frame(frame.t)
        if getattr(frame, "decoded", True):
            self._emit(self.pipeline.process(frame.image, frame.t))
        else:  # the decoder skipped it when the pipeline said it would not detect on it
            self._emit(self.pipeline.process(None, frame.t, decoded=False))
        if self.after_frame is not None:
            self.after_frame(frame)
        self._last_t = frame.t
        self.frames += 1
        if self._live:
            self.lag_s = max(0.0, self._clock() - frame.t)
        return True

    def _follow_clock(self) -> None:
        """After a wall-clock step: close the open window where the old clock stood (its
        last frame), at once rather than when the new clock reaches its end."""
        if self._watch is None or (epoch := self._watch.check()) == self._epoch:
            return
        step = self._watch.last_step
        if self._last_t is not None:
            self._emit(self.pipeline.flush(self._last_t))
        self._epoch = epoch
        if step is not None:
            text = (f"wall clock stepped {step.jump_s:+.1f} s at "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(step.after))}: "
                    f"window closed (step {epoch} seen by this device)")
            self.clock_note = (time.monotonic(), text)
            log.warning("camera %s: %s", self.camera_id, text)

    def _clock_note(self) -> str | None:
        note = self.clock_note
        if note and time.monotonic() - note[0] < CLOCK_NOTE_S:
            return note[1]
        return disagreement(self._watch.gateway_offset_s) if self._watch else None

    def _flush_time(self) -> float:
        if self._live or self._last_t is None:
            return self._clock()
        return self._last_t

    def _emit(self, windows: list[WindowAggregate], *, now: bool = False) -> None:
        """Hand closed windows to the sink; if it fails (disk full), keep them and retry
        later rather than lose them: after 1 s, then 2, 4, ... at most every minute
        (``now`` at shutdown). Bounded: a sink failing for hours sheds the oldest, as the
        outbox itself would. Logged once when it starts failing and once when it works
        again, not per frame."""
        self._unsaved.extend(windows)
        del self._unsaved[:-UNSAVED_MAX]
        if not now and time.monotonic() < self._sink_retry_at:
            return
        while self._unsaved:
            try:
                self._sink(self._unsaved[0])
            except MessageError as e:
                # the window itself breaks the schema: a retry cannot help, and holding it
                # would hold back every later window of this camera
                self.process_error = f"window dropped, invalid: {e}"
                log.error("camera %s: %s", self.camera_id, self.process_error)
            except Exception as e:
                self._sink_failed(e)
                return
            self._unsaved.pop(0)
            if self.sink_error is not None:
                log.warning("camera %s: storing windows works again (%s before)",
                            self.camera_id, self.sink_error)
            self.sink_error, self._sink_backoff_s, self._sink_retry_at = None, 0.0, 0.0

    def _sink_failed(self, e: Exception) -> None:
        error = write_error(e)
        if error != self.sink_error:
            log.error("camera %s: %s; holding %d windows in memory and retrying with "
                      "backoff (%s)", self.camera_id, error, len(self._unsaved), e)
        self.sink_error = error
        self._sink_backoff_s = min(max(1.0, 2 * self._sink_backoff_s), SINK_RETRY_MAX_S)
        self._sink_retry_at = time.monotonic() + self._sink_backoff_s

    def _apply_pending_config(self) -> None:
        with self._lock:
            msg, self._pending = self._pending, None
        if msg is None:
            return
        try:
            self.pipeline.reconfigure(msg.analytics)
        except Exception as e:  # the pipeline refused it: keep running the old config
            self.reject_config(f"config {msg.config_version!r} not applied: {e}")
            return
        self.config_version, self.config_error = msg.config_version, None
        self.applied = msg
        log.info("camera %s: applied remote config %s", self.camera_id, msg.config_version)
        self.on_config_event(msg)
