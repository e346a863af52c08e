"""`storesense edge run`: one process per node, one thread per camera, MQTT in paho's thread.

    camera thread:  source.read -> pipeline.process -> outbox.put (committed) -> notify
    publisher:      outbox (oldest window first, throttled) -> QoS 1 publish -> ack deletes
    paho thread:    reconnects; PUBACKs; retained remote configs -> validated -> queued
    main thread:    status every N s, systemd watchdog, waits for SIGTERM/SIGINT

The camera worker is handed its parts (a source factory and a pipeline), so tests drive it
with the real pipeline on a real video file without the rest of the node.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from pydantic import ValidationError

from edge.config import CameraConfig, EdgeConfig, load_edge_config
from edge.outbox import Outbox
from edge.status import ProcessProbe, camera_status, device_status, offline_status
from edge.transport import MqttTransport, OutboxPublisher, Will
from storesense.config import describe_validation_error
from storesense.errors import ConfigError
from storesense.schema import (
    AnalyticsConfig,
    CameraConfigMessage,
    CameraState,
    CameraStatus,
    ModelInfo,
    WindowAggregate,
)
from storesense.topics import Topics

log = logging.getLogger(__name__)


class Frame(Protocol):
    @property
    def image(self) -> Any: ...
    @property
    def t(self) -> float: ...


class Source(Protocol):
    """edge.sources.FrameSource as the node uses it."""

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

    def process(self, image: Any, t: float) -> list[WindowAggregate]: ...
    def reconfigure(self, config: AnalyticsConfig) -> None: ...
    def flush(self, t: float) -> list[WindowAggregate]: ...
    def model_infos(self) -> list[ModelInfo]: ...


Sink = Callable[[WindowAggregate], None]
UNSAVED_MAX = 1000  # windows a camera holds in memory while the outbox cannot be written


# --------------------------------------------------------------------------- camera worker


class CameraWorker:
    """One camera: read, analyse, hand closed windows to the sink; survives source failures."""

    def __init__(
        self, camera_id: str, open_source: Callable[[], Source], pipeline: Pipeline,
        sink: Sink, *, live: bool, clock: Callable[[], float] = time.time,
        config_version: str | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._open_source = open_source
        self.pipeline = pipeline
        self._sink = sink
        self._live = live  # frame times are wall clock, so lag behind the source is meaningful
        self._clock = clock
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
        self._rate_mark = (time.monotonic(), 0)  # for fps between two status calls
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
                self.sink_error or publish_error or self.process_error),
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
            self._emit(self.pipeline.flush(self._flush_time()))
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
        return True

    def _step(self) -> bool:
        """One frame (or a read timeout). False when a non-looping file has ended."""
        assert self.source is not None
        frame = self.source.read(timeout=0.5)
        if frame is None:
            return not self.source.ended
        self._emit(self.pipeline.process(frame.image, frame.t))
        self._last_t = frame.t
        self.frames += 1
        if self._live:
            self.lag_s = max(0.0, self._clock() - frame.t)
        return True

    def _flush_time(self) -> float:
        if self._live or self._last_t is None:
            return self._clock()
        return self._last_t

    def _emit(self, windows: list[WindowAggregate]) -> None:
        """Hand closed windows to the sink; if it fails (disk full), keep them and retry
        with the next frame rather than lose them. Bounded: a sink failing for hours
        sheds the oldest (logged), as the outbox itself would."""
        self._unsaved.extend(windows)
        del self._unsaved[:-UNSAVED_MAX]
        while self._unsaved:
            try:
                self._sink(self._unsaved[0])
            except Exception as e:
                self.sink_error = f"storing window failed: {type(e).__name__}: {e}"
                log.warning("camera %s: %s (%d held)", self.camera_id, self.sink_error,
                            len(self._unsaved))
                return
            self._unsaved.pop(0)
            self.sink_error = None

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


# --------------------------------------------------------------------------- remote config


def parse_remote_config(payload: bytes, store_id: str, camera_id: str) -> CameraConfigMessage:
    """Validate a retained config message for this camera; ConfigError says why not."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"remote config is not valid JSON: {e}") from e
    try:
        msg = CameraConfigMessage.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"remote config invalid: {describe_validation_error(e)}") from e
    if (msg.store_id, msg.camera_id) != (store_id, camera_id):
        raise ConfigError(
            f"remote config is for store {msg.store_id!r} camera {msg.camera_id!r}, "
            f"this is store {store_id!r} camera {camera_id!r}"
        )
    return msg


class RemoteConfigStore:
    """The last applied remote config per camera, on disk, so a reboot keeps it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, camera_id: str) -> Path:
        return self.dir / f"{camera_id}.json"

    def save(self, msg: CameraConfigMessage) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(msg.camera_id).with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(msg.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(msg.camera_id))  # atomic: old or new file, never half

    def load(self, store_id: str, camera_id: str) -> CameraConfigMessage | None:
        p = self.path(camera_id)
        if not p.exists():
            return None
        try:
            return parse_remote_config(p.read_bytes(), store_id, camera_id)
        except ConfigError as e:  # a corrupt file must not stop the node: use edge.toml
            log.warning("ignoring saved remote config %s: %s", p, e)
            return None


# --------------------------------------------------------------------------- systemd


def sd_notify(state: str) -> bool:
    """Tell systemd READY=1 / WATCHDOG=1 / STOPPING=1 via $NOTIFY_SOCKET (no dependency)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace socket
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
    except OSError as e:
        log.warning("sd_notify %s failed: %s", state, e)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (as it recommends), or None when not supervised."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    return int(usec) / 2e6


# --------------------------------------------------------------------------- the node

SourceFactory = Callable[[CameraConfig], Source]
PipelineFactory = Callable[[CameraConfig, AnalyticsConfig], Pipeline]
STUCK_AFTER_S = 30.0  # a camera loop silent this long is hung: stop pinging the watchdog


def is_live(cam: CameraConfig) -> bool:
    """Frame times are wall clock for cameras and paced files, video time for plain files."""
    if cam.realtime or isinstance(cam.source, int):
        return True
    return "://" in cam.source


class EdgeNode:
    """Wires config, outbox, transport, publisher and camera workers; ``run`` until stopped."""

    def __init__(
        self, cfg: EdgeConfig, make_source: SourceFactory, make_pipeline: PipelineFactory,
    ) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg.broker.topic_prefix)
        self.outbox = Outbox(
            cfg.outbox_path, cfg.outbox.max_messages, int(cfg.outbox.max_mb * 1e6)
        )
        self.saved = RemoteConfigStore(cfg.remote_config_dir)
        self.probe = ProcessProbe()
        self._status_now = threading.Event()
        # Transport first: bad credentials or TLS files fail before models are loaded.
        self.transport = self._transport()
        self.workers = {c.camera_id: self._worker(c, make_source, make_pipeline)
                        for c in cfg.cameras}
        self.publisher = OutboxPublisher(
            self.outbox, self.transport, rate=cfg.outbox.replay_rate,
            max_inflight=cfg.outbox.max_inflight,
        )

    def _worker(
        self, cam: CameraConfig, make_source: SourceFactory, make_pipeline: PipelineFactory,
    ) -> CameraWorker:
        saved = self.saved.load(self.cfg.store_id, cam.camera_id)
        analytics = saved.analytics if saved else cam.analytics
        w = CameraWorker(
            cam.camera_id, lambda: make_source(cam), make_pipeline(cam, analytics), self._sink,
            live=is_live(cam), config_version=saved.config_version if saved else None,
        )
        w.applied = saved
        w.on_config_event = self._config_event
        return w

    def _transport(self) -> MqttTransport:
        c = self.cfg
        will = Will(self.topics.status(c.store_id, c.device_id), self._offline_payload())
        subs = [self.topics.config(c.store_id, cam.camera_id) for cam in c.cameras]
        return MqttTransport(
            c.broker, f"storesense-{c.store_id}-{c.device_id}", will=will,
            subscriptions=subs, on_message=self._on_message, on_connected=self._on_connected,
        )

    def _offline_payload(self) -> bytes:
        return offline_status(self.cfg.store_id, self.cfg.device_id).to_json()

    # ---------------------------------------------------------------- callbacks

    def _sink(self, w: WindowAggregate) -> None:
        dropped = self.outbox.put(self.topics.aggregate(w.store_id, w.camera_id), w)
        if dropped:
            log.warning("outbox full: dropped %d oldest windows", dropped)
        self.publisher.notify()

    def _on_connected(self) -> None:
        self.publisher.notify()
        self._status_now.set()

    def _config_event(self, msg: CameraConfigMessage | None) -> None:
        if msg is not None:
            self.saved.save(msg)
        self._status_now.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed[2] != "config" or parsed[1] not in self.workers:
            return
        worker = self.workers[parsed[1]]
        if not payload:  # HQ cleared the retained config: keep what runs now
            return
        try:
            msg = parse_remote_config(payload, self.cfg.store_id, parsed[1])
        except ConfigError as e:
            worker.reject_config(str(e))
            return
        if msg != worker.applied:  # retained configs come again on every reconnect
            worker.reconfigure(msg)

    # ---------------------------------------------------------------- status

    def status_payload(self) -> bytes:
        models: dict[str, ModelInfo] = {}
        for w in self.workers.values():
            models.update({m.name: m for m in w.pipeline.model_infos()})
        # A window the broker refused stays in the outbox; the reason is the camera's error
        # (DeviceStatus has no error field of its own).
        cameras = [
            w.status(self.transport.refusal(self.topics.aggregate(self.cfg.store_id, cam)))
            for cam, w in self.workers.items()
        ]
        st = device_status(
            self.cfg.store_id, self.cfg.device_id, probe=self.probe,
            outbox=self.outbox.stats(), cameras=cameras, models=list(models.values()),
        )
        return st.to_json()

    def _publish_status(self) -> bool:
        """False if the transport said not now (see MqttTransport.may_publish): retry soon."""
        # Only while connected: paho would queue every heartbeat of a long outage in memory.
        # Not while the broker refuses the status topic (store id and broker user do not
        # match) and its retry time has not come: Mosquitto closes the connection after a
        # refusal and each reconnect asks for a status, which would make a reconnect loop.
        topic = self.topics.status(self.cfg.store_id, self.cfg.device_id)
        if not self.transport.connected.is_set() or self.transport.held(topic):
            return True
        return self.transport.publish(
            topic, self.status_payload(), retain=True, what="status",
            # the publisher may be waiting for this one to be answered
            on_ack=self.publisher.notify, on_refused=lambda error: self.publisher.notify(),
        )

    def healthy(self) -> bool:
        now = time.monotonic()
        return all(
            w.thread.is_alive() and now - w.heartbeat < STUCK_AFTER_S
            for w in self.workers.values()
        )

    # ---------------------------------------------------------------- run

    def run(self, stop: threading.Event) -> int:
        self.transport.start()
        self.publisher.start()
        for w in self.workers.values():
            w.start()
        sd_notify("READY=1")
        try:
            self._main_loop(stop)
        finally:
            self.shutdown()
        return 0

    def _main_loop(self, stop: threading.Event) -> None:
        interval = self.cfg.status_interval_s
        wd = watchdog_interval_s()
        tick = min(interval, wd or interval, 1.0)
        next_status = time.monotonic()
        while not stop.is_set():
            if self._status_now.is_set() or time.monotonic() >= next_status:
                self._status_now.clear()
                sent = self._publish_status()
                next_status = time.monotonic() + (interval if sent else min(interval, 0.2))
            if wd is not None and self.healthy():
                sd_notify("WATCHDOG=1")
            if all(not w.thread.is_alive() for w in self.workers.values()):
                log.info("all camera sources ended")
                self.publisher.drain(10.0)
                return
            self._status_now.wait(tick)

    def shutdown(self) -> None:
        """Flush open windows into the outbox, send what we can, say goodbye, disconnect."""
        sd_notify("STOPPING=1")
        for w in self.workers.values():
            w.stop()
        if self.transport.connected.is_set():
            self.publisher.drain(5.0)
        self.publisher.stop()
        topic = self.topics.status(self.cfg.store_id, self.cfg.device_id)
        refused = self.transport.refusal(topic) is not None  # no goodbye the broker refuses
        self.transport.stop(last=None if refused else Will(topic, self._offline_payload()))
        self.outbox.close()


# --------------------------------------------------------------------------- CLI


def real_parts(cfg: EdgeConfig) -> tuple[SourceFactory, PipelineFactory]:
    """The product's source and pipeline (imported here: OpenCV/onnxruntime load slowly)."""
    from edge.detector import load_detector
    from edge.pipeline import CameraPipeline, load_demographics
    from edge.sources import open_source

    def make_source(cam: CameraConfig) -> Source:
        return open_source(cam.source, loop=cam.loop, realtime=cam.realtime)

    def make_pipeline(cam: CameraConfig, analytics: AnalyticsConfig) -> Pipeline:
        detector = load_detector(
            cfg.detector.model, models_dir=cfg.models_dir, threads=cfg.detector.threads
        )
        demo = (
            load_demographics(cfg.models_dir, threads=cfg.detector.threads)
            if cfg.demographics else None
        )
        return CameraPipeline(
            cfg.store_id, cam.camera_id, analytics, detector, demographics=demo
        )

    return make_source, make_pipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="edge.toml")


def run(args: argparse.Namespace) -> int:
    cfg = load_edge_config(args.config)
    make_source, make_pipeline = real_parts(cfg)
    node = EdgeNode(cfg, make_source, make_pipeline)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return node.run(stop)
