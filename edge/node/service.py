"""`storesense edge run`: one process per node, one thread per camera, MQTT in paho's thread.

    camera thread:  source.read -> pipeline.process -> outbox.put (committed) -> notify
    publisher:      outbox (oldest window first, throttled) -> QoS 1 publish -> ack deletes
    paho thread:    reconnects; PUBACKs; retained remote configs -> validated -> queued
    main thread:    status every N s, systemd watchdog, waits for SIGTERM/SIGINT

The parts live in their own modules of edge.node: camera_worker (camera thread),
outbox_publisher (publisher), transport (paho), remote_config and systemd. This one wires them.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import msgspec

from edge.node.camera_worker import CameraWorker, Pipeline, Source
from edge.node.clock import ClockWatch
from edge.node.config import CameraConfig, EdgeConfig, load_edge_config
from edge.node.mqtt_client import Will
from edge.node.outbox import Outbox
from edge.node.outbox_publisher import OutboxPublisher
from edge.node.remote_config import RemoteConfigStore, offer_remote_config
from edge.node.status import ProcessProbe, device_status, offline_status
from edge.node.systemd import sd_notify, watchdog_interval_s
from edge.node.transport import MqttTransport
from storesense.schema import (
    AnalyticsConfig,
    CameraConfigMessage,
    ModelInfo,
    WindowAggregate,
    WindowAggregatePacked,
)
from storesense.topics import Topics

if TYPE_CHECKING:
    from edge.node.installer import Installer
    from edge.node.model_update import ModelUpdater

log = logging.getLogger(__name__)

SourceFactory = Callable[[CameraConfig], Source]
PipelineFactory = Callable[[CameraConfig, AnalyticsConfig], Pipeline]
CLOCK_EPOCH = "clock_epoch"  # outbox meta key (edge.node.clock)
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
        *, wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg.broker.topic_prefix)
        self.outbox = Outbox(
            cfg.outbox_path, cfg.outbox.max_messages, int(cfg.outbox.max_mb * 1e6)
        )
        self.saved = RemoteConfigStore(cfg.remote_config_dir)
        # wall_clock: what live frames are stamped with (tests give a clock they can step)
        self.clock = ClockWatch(self.outbox.meta(CLOCK_EPOCH), self._save_clock_epoch,
                                wall=wall_clock)
        self.probe = ProcessProbe()
        self._status_now = threading.Event()
        self._problems: list[str] = []
        self._to_report: dict[str, CameraConfigMessage] = {}  # installer saves not yet applied
        # Transport first: bad credentials or TLS files fail before models are loaded.
        self.transport = self._transport()
        self.workers = {c.camera_id: self._worker(c, make_source, make_pipeline)
                        for c in cfg.cameras}
        self.publisher = OutboxPublisher(
            self.outbox, self.transport, rate=cfg.outbox.replay_rate,
            max_inflight=cfg.outbox.max_inflight, confirm=cfg.outbox.confirm,
            confirm_timeout_s=cfg.outbox.confirm_timeout_s,
        )
        self.models = self._model_updater()
        self.installer = self._installer()

    def _worker(
        self, cam: CameraConfig, make_source: SourceFactory, make_pipeline: PipelineFactory,
    ) -> CameraWorker:
        saved = self.saved.load(self.cfg.store_id, cam.camera_id)
        analytics = saved.analytics if saved else cam.analytics
        w = CameraWorker(
            cam.camera_id, lambda: make_source(cam), make_pipeline(cam, analytics), self._sink,
            live=is_live(cam), config_version=saved.config_version if saved else None,
            clock=self.clock.wall, clock_watch=self.clock,
        )
        w.applied = saved
        w.on_config_event = self._config_event
        return w

    def _model_updater(self) -> ModelUpdater | None:
        if self.cfg.model_update is None:
            return None
        from edge.node.model_update import ModelUpdater  # onnxruntime: only when asked for

        updater = ModelUpdater(self.cfg.model_update, self.cfg.store_id, self.cfg.device_id,
                               self.workers, self.cfg.model_dir, self.cfg.detector.threads)
        updater.on_event = self._status_now.set
        return updater

    def _installer(self) -> Installer | None:
        if self.cfg.installer is None:
            return None
        from edge.node.installer import Installer

        return Installer(self.cfg.installer, self.cfg.store_id, self.workers, self._installed)

    def _installed(self, msg: CameraConfigMessage) -> None:
        """An installer saved a camera's config on the local page: apply it as a remote
        config is applied (kept on disk by _config_event), which reports it to HQ once
        the camera applied it."""
        self._to_report[msg.camera_id] = msg
        self.workers[msg.camera_id].reconfigure(msg)

    def _transport(self) -> MqttTransport:
        c = self.cfg
        will = Will(self.topics.status(c.store_id, c.device_id), self._offline_payload())
        subs = [self.topics.config(c.store_id, cam.camera_id) for cam in c.cameras]
        if c.outbox.confirm:  # the gateway's confirmations of this node's windows
            subs += [self.topics.ack(c.store_id, cam.camera_id) for cam in c.cameras]
        if c.model_update is not None:
            subs.append(self.topics.model(c.store_id, c.device_id))
        return MqttTransport(
            c.broker, f"storesense-{c.store_id}-{c.device_id}", will=will,
            subscriptions=subs, on_message=self._on_message, on_connected=self._on_connected,
        )

    def _save_clock_epoch(self, epoch: int) -> None:
        # the number of steps this device has seen, kept across restarts for the reports
        try:
            self.outbox.set_meta(CLOCK_EPOCH, epoch)
        except Exception:  # the outbox's own errors show at its next write
            log.exception("could not save clock epoch %d", epoch)

    def _offline_payload(self) -> bytes:
        return offline_status(self.cfg.store_id, self.cfg.device_id).to_json()

    # ---------------------------------------------------------------- callbacks

    def _sink(self, w: WindowAggregate) -> None:
        if self.cfg.outbox.heatmap_packed:
            w = WindowAggregatePacked.packing(w)
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
            if self._to_report.get(msg.camera_id) is msg:
                # the configuration, retained, QoS 1: never a picture
                del self._to_report[msg.camera_id]
                self.transport.publish(self.topics.reported(msg.store_id, msg.camera_id),
                                       msg.model_dump_json().encode(), retain=True,
                                       what="reported config")
        self._status_now.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is not None and parsed[2] == "model" and self.models is not None \
                and parsed[:2] == (self.cfg.store_id, self.cfg.device_id):
            self.models.offer(payload)
            return
        if parsed is None or parsed[0] != self.cfg.store_id or parsed[1] not in self.workers:
            return
        if parsed[2] == "config":
            offer_remote_config(self.workers[parsed[1]], payload, self.cfg.store_id)
        elif parsed[2] == "ack" and (gateway_now := self.publisher.confirmed(payload)):
            self.clock.gateway_time(gateway_now)

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
        if self.models is not None and self.models.error:
            st = msgspec.structs.replace(st, model_error=self.models.error)
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

    def problems(self) -> list[str]:
        """What is wrong now, for people: systemd's STATUS= line and the log. Empty = ok.
        A full outbox disk is one: the node keeps running (windows are held in memory and
        retried), but nothing new is durable until space is freed."""
        out = []
        error = self.outbox.stats().error
        if error is not None:
            out.append(error)
        out += [f"camera {cam}: {w.sink_error}" for cam, w in self.workers.items()
                if w.sink_error and w.sink_error != error]
        return out

    def _report_problems(self) -> None:
        problems = self.problems()
        if problems != self._problems:
            text = "; ".join(problems) or "ok"
            (log.error if problems else log.warning)("node health: %s", text)
            sd_notify(f"STATUS={text}")
            self._problems = problems

    def healthy(self) -> bool:
        """For the systemd watchdog: every camera loop alive and turning. A full disk is
        not a hang (a restart would not free space): see ``problems``."""
        now = time.monotonic()
        return all(
            w.thread.is_alive() and now - w.heartbeat < STUCK_AFTER_S
            for w in self.workers.values()
        )

    # ---------------------------------------------------------------- run

    def run(self, stop: threading.Event) -> int:
        self.transport.start()
        self.publisher.start()
        if self.models is not None:
            self.models.start()
        for w in self.workers.values():
            w.start()
        if self.installer is not None:
            self.installer.start()
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
            self._report_problems()
            if all(not w.thread.is_alive() for w in self.workers.values()):
                log.info("all camera sources ended")
                self.publisher.drain(10.0)
                return
            self._status_now.wait(tick)

    def shutdown(self) -> None:
        """Flush open windows into the outbox, send what we can, say goodbye, disconnect."""
        sd_notify("STOPPING=1")
        if self.installer is not None:
            self.installer.stop()
        if self.models is not None:
            self.models.stop()
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
    from edge.pipeline import CameraPipeline, load_demographics, make_tracker
    from edge.vision.detector import load_detectors
    from edge.vision.sources import open_source

    def make_source(cam: CameraConfig) -> Source:
        return open_source(cam.source, loop=cam.loop, realtime=cam.realtime)

    def make_pipeline(cam: CameraConfig, analytics: AnalyticsConfig) -> Pipeline:
        detector, crowd = load_detectors(
            cfg.detector.model, models_dir=cfg.models_dir, threads=cfg.detector.threads
        )
        demo = (
            load_demographics(cfg.models_dir, threads=cfg.detector.threads)
            if cfg.demographics else None
        )
        tracker = make_tracker(analytics, cfg.models_dir, cfg.detector.threads)
        return CameraPipeline(
            cfg.store_id, cam.camera_id, analytics, detector, demographics=demo, tracker=tracker,
            crowd_detector=crowd,
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
