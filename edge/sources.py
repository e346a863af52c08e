"""Frame sources: a video file, an RTSP/HTTP URL or a USB camera, through OpenCV.

A source never ends its loop silently and never raises out of ``read()``: a dropped stream,
an unplugged camera or a file that disappears puts it in state "reconnecting", and it retries
with exponential backoff (0.5 s doubling to 30 s) for ever, so the pipeline behind it keeps
its tracks, counters and windows across the outage. ``read(timeout)`` returns None on
timeout so the caller can check its stop flag; ``ended`` tells a finished file from a timeout.

Timestamps: media time for files (frame position / fps, continuing across loops), the
injected clock for live sources and for files read in real time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from storesense.errors import SourceError

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
_OPEN_TIMEOUT_MS = 5000
_READ_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Frame:
    image: npt.NDArray[np.uint8]  # BGR
    t: float
    index: int


def parse_spec(spec: str | int) -> tuple[str, str | int]:
    """-> (kind, target): ("file", path), ("url", url) or ("usb", index)."""
    if isinstance(spec, int):
        return "usb", spec
    s = spec.strip()
    if s.lower().startswith("usb:"):
        try:
            return "usb", int(s[4:])
        except ValueError as e:
            raise SourceError(f"camera spec {spec!r}: expected usb:N with N an integer") from e
    if "://" in s:
        return "url", s
    if s.isdigit():
        return "usb", int(s)
    return "file", s


class FrameSource:
    def __init__(
        self,
        spec: str | int,
        *,
        loop: bool = False,
        realtime: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kind, self.target = parse_spec(spec)
        self.loop, self.clock = loop, clock
        self.realtime = realtime and self.kind == "file"
        self.state = "starting"
        self.since = clock()
        self.last_error: str | None = None
        self.dropped_frames = 0
        self.frames_total = 0
        self.fps = 0.0
        self.ended = False
        self._cap: cv2.VideoCapture | None = None
        self._backoff = BACKOFF_MIN_S
        self._next_attempt = 0.0
        self._pos = 0  # frames read from the current open file
        self._offset = 0.0  # media time carried over loops and reopenings
        self._pace_start = 0.0
        self._paced = 0

    # ------------------------------------------------------------------ state

    def _set_state(self, state: str, error: str | None = None) -> None:
        if state != self.state:
            log.info(
                "source %s: %s -> %s%s",
                self.target,
                self.state,
                state,
                f" ({error})" if error else "",
            )
            self.state, self.since = state, self.clock()
        if error is not None:
            self.last_error = error

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self.ended = True
        self._set_state("stopped")

    # ------------------------------------------------------------------ reading

    def read(self, timeout: float | None = None) -> Frame | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended:
            if self._cap is None and not self._try_open(deadline):
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            frame = self._read_open()
            if frame is not None:
                return frame
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def _wait(self, until: float, deadline: float | None) -> bool:
        """Sleep until a monotonic time, but never past the caller's deadline."""
        end = until if deadline is None else min(until, deadline)
        delay = end - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return time.monotonic() >= until

    def _try_open(self, deadline: float | None) -> bool:
        if not self._wait(self._next_attempt, deadline):
            return False
        cap = self._open_capture()
        if cap is None or not cap.isOpened():
            self._fail(f"cannot open {self.target}")
            return False
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else (self.fps or 0.0)
        self._pos = 0
        self._pace_start, self._paced = self.clock(), 0
        self._set_state("ok")
        return True

    def _open_capture(self) -> cv2.VideoCapture | None:
        if self.kind == "file" and not os.path.isfile(str(self.target)):
            return None
        if self.kind == "usb":
            return cv2.VideoCapture(int(self.target))
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            _OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            _READ_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)

    def _fail(self, error: str) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._set_state("reconnecting", error)
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def _read_open(self) -> Frame | None:
        assert self._cap is not None
        if self.realtime:
            self._skip_to_schedule()
        ok, image = self._cap.read()
        if not ok or image is None:
            self._on_read_failure()
            return None
        self._backoff = BACKOFF_MIN_S
        self._pos += 1
        self.frames_total += 1
        return Frame(np.asarray(image, np.uint8), self._timestamp(), self.frames_total)

    def _timestamp(self) -> float:
        if self.kind != "file" or self.realtime:
            return self.clock()
        return self._offset + (self._pos - 1) / (self.fps or 25.0)

    def _skip_to_schedule(self) -> None:
        """Real-time replay: wait for the frame's due time, or drop frames we are late for."""
        assert self._cap is not None
        period = 1.0 / (self.fps or 25.0)
        due = self._pace_start + self._paced * period
        now = self.clock()
        while now - due > period and self._cap.grab():
            self.dropped_frames += 1
            self._pos += 1
            self._paced += 1
            due += period
        if due > now:
            time.sleep(due - now)
        self._paced += 1

    def _on_read_failure(self) -> None:
        if self.kind != "file":
            self._fail(f"read failed on {self.target}")
            return
        if not os.path.isfile(str(self.target)):
            self._fail(f"file {self.target} disappeared")
            self._offset += self._pos / (self.fps or 25.0)
            return
        assert self._cap is not None
        self._cap.release()
        self._cap = None
        self._offset += self._pos / (self.fps or 25.0)
        if not self.loop:
            self.ended = True
            self._set_state("stopped")


def open_source(
    spec: str | int,
    *,
    loop: bool = False,
    realtime: bool = False,
    clock: Callable[[], float] = time.time,
) -> FrameSource:
    """A frame source for a file path, rtsp://.../http://... URL, "usb:N" or a camera index."""
    return FrameSource(spec, loop=loop, realtime=realtime, clock=clock)


@dataclass
class FileInfo:
    fps: float
    frames: int
    width: int
    height: int


def file_frames(
    path: str, wants_image: Callable[[], bool], *, threads: int = 1
) -> tuple[FileInfo, Iterator[tuple[int, float, npt.NDArray[np.uint8] | None]]]:
    """Offline reading for analyze/eval/bench: (index, media time, image or None).

    Frames whose image is not wanted are grabbed but not converted to BGR, which saves a
    colour conversion per skipped frame (decoding itself cannot be skipped in H.264).
    """
    if not os.path.isfile(path):
        raise SourceError(f"video file {path} not found")
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not cap.isOpened():
        raise SourceError(f"cannot open video {path}")
    info = FileInfo(
        float(cap.get(cv2.CAP_PROP_FPS) or 25.0),
        int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )

    def gen() -> Iterator[tuple[int, float, npt.NDArray[np.uint8] | None]]:
        index = 0
        try:
            while cap.grab():
                index += 1
                image = None
                if wants_image():
                    ok, raw = cap.retrieve()
                    if not ok:
                        break
                    image = np.asarray(raw, np.uint8)
                yield index, (index - 1) / info.fps, image
        finally:
            cap.release()

    return info, gen()
