"""Frame sources: a video file, an RTSP/HTTP URL or a USB camera.

One frame path for the node and for ``analyze``/``eval``/``bench``: files and URLs are read
with PyAV (FFmpeg) by ``_av_frames``, which decodes a non-reference frame only if the pipeline
may detect on it and converts a frame to BGR only if the pipeline wants its image; USB cameras,
and everything where PyAV is not installed, go through OpenCV. ``FrameSource.attach`` takes
the pipeline's two questions (``detects_next``, ``needs_frame``).

A source never ends its loop silently and never raises out of ``read()``: a dropped stream,
an unplugged camera or a file that disappears puts it in state "reconnecting", and it retries
with exponential backoff (0.5 s doubling to 30 s) for ever, so the pipeline behind it keeps
its tracks, counters and windows across the outage. ``read(timeout)`` returns None on
timeout so the caller can check its stop flag; ``ended`` tells a finished file from a timeout.

Live streams read through PyAV keep pace with the camera: a reader behind it hands frames on
without their image until it has caught up (``edge.vision.live_lag``).

Timestamps: the injected clock for live sources (for a stream, less how late its frame was
read: when the camera sent it) and for files read in real time; for a file
read as fast as it decodes, media time (frame position / fps, continuing across loops) counted
from ``origin``, the file's modification time minus its duration: about when a recording
began, and the same on every run over the same file, so a node restarted over it produces the
same message ids (media time alone would date its windows in 1970).
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.vision.live_lag import StreamLag
from storesense.errors import SourceError
from storesense.schema import CameraState

_av: ModuleType | None
try:  # PyAV: FFmpeg with control over frame skipping and scaling; OpenCV is the fallback
    import av as _av
except ImportError:  # pragma: no cover - exercised only where PyAV is not installed
    _av = None

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
_OPEN_TIMEOUT_MS = 5000
_READ_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Frame:
    image: npt.NDArray[np.uint8] | None  # BGR; None when the reader was told it is not wanted
    t: float
    index: int
    decoded: bool = True  # False: a non-reference frame the decoder was told to skip


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
        self.state: CameraState = "starting"
        self.since = clock()
        self.last_error: str | None = None
        self.dropped_frames = 0
        self.frames_total = 0
        self.fps = 0.0
        self.ended = False
        self._cap: cv2.VideoCapture | _AvReader | None = None
        self._wants_image: Callable[[], bool] = _always
        self._wants_ahead: Callable[[int], bool] | None = None
        self._needs_image: Callable[[], bool] = _never
        self._backoff = BACKOFF_MIN_S
        self._next_attempt = 0.0
        self._pos = 0  # frames read from the current open file
        self._offset = 0.0  # media time carried over loops and reopenings
        self.origin: float | None = None  # wall time of a file's first frame, set at open
        self._pace_start = 0.0
        self._paced = 0

    # ------------------------------------------------------------------ state

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
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

    def attach(
        self, wants_image: Callable[[], bool], wants_ahead: Callable[[int], bool] | None = None,
        needs_image: Callable[[], bool] | None = None,
    ) -> None:
        """The pipeline's questions: whether the next frame's image is wanted, whether the
        frame n after the next may be (see ``file_frames``), and whether the pipeline needs the
        next frame's image even from a live stream it is behind (``edge.vision.live_lag``; none:
        it does not). Unattached, every frame is read."""
        self._wants_image, self._wants_ahead = wants_image, wants_ahead
        self._needs_image = needs_image or _never

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
        if self.kind != "usb" and _av is not None:
            return self._open_av()
        cap = self._open_capture()
        if cap is None or not cap.isOpened():
            self._fail(f"cannot open {self.target}")
            return False
        self._opened(cap, float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                     float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0))
        return True

    def _open_av(self) -> bool:
        if self.kind == "file" and not os.path.isfile(str(self.target)):
            self._fail(f"cannot open {self.target}: no such file")
            return False
        try:
            reader = _AvReader(str(self.target), self.kind == "url", self)
        except (SourceError, OSError) as e:
            self._fail(f"cannot open {self.target}: {e}")
            return False
        self._opened(reader, reader.info.fps, float(reader.info.frames))
        return True

    def _opened(self, cap: cv2.VideoCapture | _AvReader, fps: float, frames: float) -> None:
        self._cap = cap
        self.fps = fps if 0 < fps < 1000 else (self.fps or 0.0)
        self._pos = 0
        self._pace_start, self._paced = self.clock(), 0
        if self.kind == "file" and self.origin is None:
            duration = frames / self.fps if self.fps > 0 and frames > 0 else 0.0
            self.origin = os.path.getmtime(str(self.target)) - duration
        self._set_state("ok")

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
        if isinstance(self._cap, _AvReader):
            got = self._cap.read()
            if got is None:
                self._on_read_failure()
                return None
            image, decoded = got
            self.dropped_frames += self._cap.withheld
        else:
            ok, raw = self._cap.read()
            if not ok or raw is None:
                self._on_read_failure()
                return None
            image, decoded = np.asarray(raw, np.uint8), True
        self._backoff = BACKOFF_MIN_S
        self._pos += 1
        self.frames_total += 1
        return Frame(image, self._timestamp(), self.frames_total, decoded)

    def _timestamp(self) -> float:
        if self.kind != "file" or self.realtime:
            # A live stream's frame was sent when it was due, not when it was read.
            late = self._cap.lateness if isinstance(self._cap, _AvReader) else 0.0
            return self.clock() - late
        return (self.origin or 0.0) + self._offset + (self._pos - 1) / (self.fps or 25.0)

    def _skip_to_schedule(self) -> None:
        """Real-time replay: wait for the frame's due time, or drop frames we are late for."""
        assert self._cap is not None
        period = 1.0 / (self.fps or 25.0)
        due = self._pace_start + self._paced * period
        now = self.clock()
        while now - due > period and self._cap.grab():  # late: read on, convert nothing
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
    not_decoded: int = 0  # frames handed out so far that the decoder skipped (PyAV only)


def av_available() -> bool:
    """Whether offline reading goes through PyAV (else OpenCV)."""
    return _av is not None


Scale = Callable[[int, int], tuple[int, int]]
OfflineFrame = tuple[int, float, npt.NDArray[np.uint8] | None]
OfflineFrames = Iterator[OfflineFrame]


def file_frames(
    path: str,
    wants_image: Callable[[], bool],
    *,
    threads: int = 1,
    wants_ahead: Callable[[int], bool] | None = None,
    scale_to: Scale | None = None,
) -> tuple[FileInfo, OfflineFrames]:
    """Offline reading for analyze/eval/bench: (index, media time, image or None).

    Frames whose image is not wanted (``wants_image()`` asked just before each frame is
    handed out) are not converted to BGR. With PyAV installed (the default):

    - ``wants_ahead(n)``: asked as each packet is decoded, whether the frame n frames after
      the next one handed out may want its image; if not, the decoder is told to skip it when
      it is a non-reference frame (B-frames that nothing is predicted from), which saves its
      decoding. Such a frame is still handed out, in order, with image None and its own
      timestamp; the caller learns it was not decoded only if it wanted the image (the
      answer given ahead can be wrong when the caller's needs change in between).
    - ``scale_to(width, height)``: the (width, height) to convert wanted frames to; FFmpeg's
      swscale scales (area filter) and converts colour in one pass, much cheaper at 1080p
      than full-size BGR plus a resize.

    Without PyAV, OpenCV decodes every frame and both options are ignored except scaling.
    Media time is the frame's presentation time stamp (PyAV) or index / fps (OpenCV).
    """
    if not os.path.isfile(path):
        raise SourceError(f"video file {path} not found")
    if _av is not None and scale_to is None and threads == 1:
        return _node_frames(path, wants_image, wants_ahead)
    if _av is not None:
        return _av_file_frames(path, wants_image, threads, wants_ahead, scale_to)
    return _cv_file_frames(path, wants_image, threads, scale_to)


def _node_frames(
    path: str, wants_image: Callable[[], bool], wants_ahead: Callable[[int], bool] | None
) -> tuple[FileInfo, OfflineFrames]:
    """A file read by the edge node's own FrameSource, so what analyze, eval and bench measure
    is what a store's node runs; media time from the file's start."""
    src = FrameSource(path)
    src.attach(wants_image, wants_ahead)
    if not src._try_open(None) or not isinstance(src._cap, _AvReader):
        raise SourceError(f"cannot open video {path}: {src.last_error}")
    info, origin = src._cap.info, src.origin or 0.0

    def gen() -> OfflineFrames:
        try:
            while (frame := src.read()) is not None:
                yield frame.index, frame.t - origin, frame.image
        finally:
            src.close()

    return info, gen()


def _cv_file_frames(
    path: str, wants_image: Callable[[], bool], threads: int, scale_to: Scale | None
) -> tuple[FileInfo, OfflineFrames]:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not cap.isOpened():
        raise SourceError(f"cannot open video {path}")
    info = FileInfo(
        float(cap.get(cv2.CAP_PROP_FPS) or 25.0),
        int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    size = scale_to(info.width, info.height) if scale_to else None

    def gen() -> OfflineFrames:
        index = 0
        try:
            while cap.grab():
                index += 1
                image = None
                if wants_image():
                    ok, raw = cap.retrieve()
                    if not ok:
                        break
                    if size is not None and size != (raw.shape[1], raw.shape[0]):
                        raw = cv2.resize(raw, size, interpolation=cv2.INTER_AREA)
                    image = np.asarray(raw, np.uint8)
                yield index, (index - 1) / info.fps, image
        finally:
            cap.release()

    return info, gen()


def _av_open(target: str, live: bool) -> tuple[Any, Any, FileInfo]:
    """(container, video stream, info) of a file or URL opened with PyAV."""
    assert _av is not None
    options = {"rtsp_transport": "tcp"} if live and target.lower().startswith("rtsp") else {}
    try:
        container = _av.open(target, options=options,
                             timeout=(_OPEN_TIMEOUT_MS / 1000, _READ_TIMEOUT_MS / 1000))
        stream = container.streams.video[0]
    except (_av.FFmpegError, IndexError) as e:
        raise SourceError(f"cannot open video {target}: {e}") from e
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 25.0
    info = FileInfo(fps, int(stream.frames or 0), int(stream.codec_context.width),
                    int(stream.codec_context.height))
    return container, stream, info


def _av_file_frames(
    path: str,
    wants_image: Callable[[], bool],
    threads: int,
    wants_ahead: Callable[[int], bool] | None,
    scale_to: Scale | None,
) -> tuple[FileInfo, OfflineFrames]:
    container, stream, info = _av_open(path, live=False)
    size = scale_to(info.width, info.height) if scale_to else None
    if size is not None and size != (info.width, info.height):
        size = (size[0] + size[0] % 2, size[1] + size[1] % 2)  # I420 wants even sides
    else:
        size = None
    return info, _av_frames(container, stream, info, wants_image, wants_ahead, size, threads)


def _av_frames(
    container: Any,
    stream: Any,
    info: FileInfo,
    wants_image: Callable[[], bool],
    wants_ahead: Callable[[int], bool] | None,
    size: tuple[int, int] | None,
    threads: int = 1,
    on_time: Callable[[float, float], None] | None = None,
) -> Generator[OfflineFrame, None, None]:
    """Every frame in display order: (index, media time, BGR image or None); see
    ``file_frames`` for what is decoded and converted. ``on_time`` hears each frame's media
    time, and the longest the demuxer waited for a packet since the frame before, before its
    image is asked for. Closes the container when done."""
    assert _av is not None
    ctx = stream.codec_context
    ctx.thread_count = threads
    # Frame threads would decode packets ahead of the skip decision; slices do not.
    ctx.thread_type = "SLICE" if threads > 1 else "NONE"
    fps = info.fps
    tb = float(stream.time_base) if stream.time_base else 1.0 / fps
    ticks_per_frame = 1.0 / (fps * tb)
    start: int | None = stream.start_time
    pending: list[int] = []  # pts of packets sent to the decoder, not yet handed out
    index = 0
    waited = 0.0  # longest wait for a packet since the last frame handed out

    def out(pts: int | None, frame: Any) -> OfflineFrame:
        nonlocal index, waited
        index += 1
        t = (index - 1) / fps if pts is None or start is None else (pts - start) * tb
        if on_time is not None:
            on_time(t, waited)
        waited = 0.0
        image = None
        if frame is None:
            info.not_decoded += 1
        elif wants_image():
            image = _to_bgr(frame, size)
        return index, t, image

    try:
        packets = container.demux(stream)
        while True:
            asked = time.monotonic()
            packet = next(packets, None)
            if packet is None:
                break
            waited = max(waited, time.monotonic() - asked)
            if packet.pts is not None and packet.size:
                if start is None:
                    start = packet.pts
                heapq.heappush(pending, packet.pts)
                if wants_ahead is not None:
                    ahead = round((packet.pts - start) / ticks_per_frame) - index
                    ctx.skip_frame = "DEFAULT" if wants_ahead(ahead) else "NONREF"
            try:
                frames = ctx.decode(packet)
            except _av.FFmpegError as e:  # a corrupt packet: its frame counts as skipped
                log.warning("%s: decode error: %s", container.name, e)
                continue
            for frame in frames:
                pts = frame.pts
                while pending and pts is not None and pending[0] < pts:
                    yield out(heapq.heappop(pending), None)
                if pending and pending[0] == pts:
                    heapq.heappop(pending)
                yield out(pts, frame)
        while pending:
            yield out(heapq.heappop(pending), None)
    finally:
        container.close()


class _AvReader:
    """A FrameSource's open file or stream through PyAV: frames in order, each decoded and
    converted only as the attached pipeline wants (FrameSource.attach).

    A live stream's reader that falls behind the stream (``StreamLag``) hands frames on without
    their image, decoding only what later frames need, until it has caught up: ``withheld``
    says the last frame was one of them, ``lateness`` how late it was read."""

    def __init__(self, target: str, live: bool, source: FrameSource) -> None:
        self._container, stream, self.info = _av_open(target, live)
        self._source = source
        self._lag = StreamLag() if live else None
        self.lateness = 0.0
        self.withheld = False
        self._frames = _av_frames(
            self._container, stream, self.info, self._wants_image, self._wants_ahead, None,
            on_time=self._on_time if live else None,
        )
        self._want_next = True

    def _on_time(self, media_t: float, waited_s: float) -> None:
        assert self._lag is not None
        self.lateness = self._lag.observe(time.monotonic(), media_t, waited_s)

    def _behind(self) -> int:
        return 0 if self._lag is None else self._lag.behind

    def _wants_image(self) -> bool:
        behind, src = self._behind(), self._source
        return self._want_next and (src._wants_image() if behind == 0
                                    else behind == 1 and src._needs_image())

    def _wants_ahead(self, n: int) -> bool:
        ahead = self._source._wants_ahead
        return self._behind() < 2 and (True if ahead is None else ahead(n))

    def read(self) -> tuple[npt.NDArray[np.uint8] | None, bool] | None:
        """(image or None, decoded) of the next frame; None at the end or on a stream error."""
        self._want_next = True
        return self._next()

    def grab(self) -> bool:
        """Read past a frame without converting it (real-time replay that is late)."""
        self._want_next = False
        return self._next() is not None

    def _next(self) -> tuple[npt.NDArray[np.uint8] | None, bool] | None:
        assert _av is not None
        skipped = self.info.not_decoded
        try:
            _, _, image = next(self._frames)
        except (StopIteration, _av.FFmpegError, OSError):
            return None
        self.withheld = self._behind() > 0 and image is None and self._source._wants_image()
        if self.withheld:  # as a frame the decoder skipped: the tracker predicts across it
            return None, False
        return image, self.info.not_decoded == skipped

    def release(self) -> None:
        self._frames.close()  # runs the generator's finally: closes the container


def _always() -> bool:
    return True


def _never() -> bool:
    return False


def _plane(frame: Any, i: int, w: int, h: int) -> npt.NDArray[np.uint8]:
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]


def _to_bgr(frame: Any, size: tuple[int, int] | None) -> npt.NDArray[np.uint8]:
    """A decoded PyAV frame as BGR, optionally scaled down to ``size`` (even sides).

    For 8-bit 4:2:0 video (nearly all H.264/H.265 cameras) the Y, U and V planes are scaled
    (bilinear, as the detector's own letterbox resize) before the colour conversion, so only
    the small image is converted: about 1.3 ms at 1080p instead of 6-9 ms for a full-size BGR
    frame. The colour conversion is OpenCV's BT.601 limited range, as OpenCV's own decoder
    path uses. Other pixel formats go through FFmpeg's swscale.
    """
    if size is None:
        return np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
    if frame.format.name != "yuv420p":
        img = frame.to_ndarray(format="bgr24", width=size[0], height=size[1])
        return np.asarray(img, np.uint8)
    w, h = frame.width, frame.height
    nw, nh = size
    planes = [cv2.resize(_plane(frame, 0, w, h), (nw, nh), interpolation=cv2.INTER_LINEAR)]
    for i in (1, 2):
        c = _plane(frame, i, (w + 1) // 2, (h + 1) // 2)
        planes.append(cv2.resize(c, (nw // 2, nh // 2), interpolation=cv2.INTER_LINEAR))
    i420 = np.concatenate([p.ravel() for p in planes]).reshape(nh * 3 // 2, nw)
    return np.asarray(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), np.uint8)
