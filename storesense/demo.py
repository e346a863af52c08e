"""`storesense demo`: the whole product on one machine.

A broker (Mosquitto when installed, else an embedded Python broker), the gateway with its API
and dashboards, edge nodes running the real pipeline on looped video as the entrance cameras
of some stores, and simulated edge aggregates (marked simulated) for the other cameras. Before
that, several weeks of simulated history are seeded so the dashboards show trends at once.
A fresh clone needs nothing else: without ../shared the edge nodes run the detector and the
clip shipped in the package (models/bundled/, storesense/demo_media/).
Ctrl-C or SIGTERM stops everything; every child process is ended before the command returns,
and the last line printed is a JSON summary of the windows the gateway stored while it ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from edge.node.config import DetectorConfig
from models.registry import REID_MODEL, default_models_dir
from storesense import demo_setup
from storesense.broker import EmbeddedBroker, Mosquitto, find_mosquitto
from storesense.schema import AnalyticsConfig, DeviceState, DeviceStatus, utcnow
from storesense.simulate import DEMO_STORES, DemoStore, simulated_window
from storesense.topics import Topics

log = logging.getLogger("storesense.demo")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EVAL = REPO.parent / "shared" / "data" / "eval"
ENV_EVAL = "STORESENSE_DEMO_EVAL"  # where the demo looks for eval sequences (tests: nowhere)
BUNDLED_CLIP = "pets09-s2l1-view001.mp4"  # storesense/demo_media/, see its NOTICE
OPEN_DETECTOR = "yolox_nano"  # shipped in the package: the detector a fresh clone has


@dataclass
class RealPipeline:
    """What the edge nodes run: which videos, which detector, with re-identification or not
    (``videos`` empty: every camera is simulated)."""

    videos: list[str] = field(default_factory=list)
    detector: str = "auto"
    reid: bool = True


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", action="append", default=[],
                   help="video file or RTSP URL to run as an entrance camera (repeatable); "
                        "default: the sequences under ../shared/data/eval when present, else "
                        "the clip shipped in the package (PETS 2009 S2.L1, 28.6 s)")
    p.add_argument("--no-video", action="store_true",
                   help="no real pipeline: every camera is simulated (and labelled so)")
    p.add_argument("--host", default="127.0.0.1", help="address the dashboards listen on")
    p.add_argument("--port", type=int, default=8080, help="dashboard/API port")
    p.add_argument("--weeks", type=int, default=4, help="weeks of simulated history to seed")
    p.add_argument("--window-s", type=_window_s, default=15,
                   help="window length of the live edge nodes, 10-3600 s (short so counts "
                        "show quickly)")
    p.add_argument("--workdir", default="var/demo", help="database, configs and logs")
    p.add_argument("--fresh", action="store_true", help="delete the workdir first")
    p.add_argument("--embedded-broker", action="store_true",
                   help="use the embedded Python broker even when Mosquitto is installed")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many seconds (0: run until Ctrl-C)")


def _window_s(text: str) -> int:
    """Checked against the edge's own bounds before anything starts."""
    try:
        return AnalyticsConfig.model_validate({"window_s": text}).window_s
    except ValidationError as e:
        raise argparse.ArgumentTypeError(e.errors()[0]["msg"]) from None


def _start_broker(workdir: Path, embedded: bool) -> Mosquitto | EmbeddedBroker:
    if not embedded and find_mosquitto():
        broker: Mosquitto | EmbeddedBroker = Mosquitto(workdir / "broker").start()
    else:
        broker = EmbeddedBroker().start()
    print(f"broker: {broker.kind} on {broker.host}:{broker.port}")
    return broker


def bundled_clip() -> Path:
    return Path(str(resources.files("storesense").joinpath("demo_media", BUNDLED_CLIP)))


def _eval_videos() -> list[str]:
    root = Path(os.environ.get(ENV_EVAL) or DEFAULT_EVAL)
    found = sorted(str(p) for p in root.glob("*/video.mp4"))
    # The shopping-street sequence first: it is the most store-like entrance view.
    return sorted(found, key=lambda v: "MOT17" not in v)


def _pipeline(args: argparse.Namespace) -> RealPipeline:
    """The best real pipeline the installed models allow: every model of the default camera
    (both detectors, re-identification), else the bundled open-data detector."""
    if args.no_video:
        return RealPipeline()
    plan = RealPipeline()
    if (missing := demo_setup.missing_models(DetectorConfig().model_names())):
        if demo_setup.missing_models([OPEN_DETECTOR]):
            print(f"no real pipeline: {missing[0]}")
            return RealPipeline()
        plan.detector = OPEN_DETECTOR
        plan.reid = not demo_setup.missing_models([REID_MODEL])
        print(f"edge nodes run the bundled open-data detector {OPEN_DETECTOR}"
              f"{'' if plan.reid else ' without re-identification'}: not every model is in "
              f"{default_models_dir()} (`storesense models fetch` adds them)")
    plan.videos = list(args.video) or _eval_videos() or [str(bundled_clip())]
    return plan


def _stored_windows(db: Path, since: str | None) -> dict[str, int]:
    """Windows the gateway stored since ``since`` (after seeding), real and simulated."""
    counts = {"real_video_windows": 0, "simulated_windows": 0}
    if since is None or not db.is_file():
        return counts
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            for simulated, n in conn.execute(
                    "SELECT simulated, COUNT(*) FROM windows WHERE received_at >= ? "
                    "GROUP BY simulated", (since,)):
                counts["simulated_windows" if simulated else "real_video_windows"] += n
    except sqlite3.Error as e:
        print(f"could not count the stored windows: {e}")
    return counts


def _missing_demographics() -> bool:
    # imported here: it loads onnxruntime, which the demo process needs only for this
    from edge.vision.demographics import AGE_GENDER_MODEL, FACE_MODEL

    missing = demo_setup.missing_models([FACE_MODEL, AGE_GENDER_MODEL])
    for reason in missing:
        print(f"edge nodes run without demographics: {reason}")
    return bool(missing)


def _spawn(name: str, cmd: list[str], workdir: Path) -> Child:
    log_path = workdir / f"{name}.log"
    out = log_path.open("ab")
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Child(name, proc, log_path)


def _stop_children(children: list[Child], timeout: float = 15.0) -> None:
    """Edge nodes first, the gateway last, so the nodes' final windows and their offline
    status are still stored."""
    for group in (children[1:], children[:1]):
        for c in group:
            if c.proc.poll() is None:
                os.killpg(c.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in group:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{c.name} did not stop in {timeout:.0f}s: killed")
                os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait(5)


class SimulatedEdges(threading.Thread):
    """Publishes simulated windows and status for cameras that have no video, every window."""

    def __init__(
        self, host: str, port: int, cameras: list[tuple[DemoStore, str]], window_s: int,
        offline_stores: set[str],
    ) -> None:
        super().__init__(name="simulated-edges", daemon=True)
        self.cameras = cameras
        self.window_s = window_s
        self.offline = offline_stores
        self.stop_event = threading.Event()
        self.topics = Topics()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="demo-simulated-edges")
        self.client.connect(host, port)
        self.client.loop_start()
        self.published = 0

    def _publish_status(self) -> None:
        seen = {s.store_id for s, _ in self.cameras}
        for store in DEMO_STORES:
            if store.store_id not in seen:
                continue
            state: DeviceState = "offline" if store.store_id in self.offline else "online"
            st = DeviceStatus(store_id=store.store_id, device_id="sim-edge", state=state,
                              sent_at=utcnow(), software_version="simulated")
            self.client.publish(self.topics.status(store.store_id, "sim-edge"),
                                st.to_json(), qos=1, retain=True)

    def run(self) -> None:
        import numpy as np

        rng = np.random.default_rng()
        step = timedelta(seconds=self.window_s)
        now = utcnow()
        start = datetime.fromtimestamp(
            int(now.timestamp()) // self.window_s * self.window_s, UTC)
        while not self.stop_event.is_set():
            self._publish_status()
            end = start + step
            wait = (end - utcnow()).total_seconds()
            if wait > 0 and self.stop_event.wait(wait):
                break
            for store, cam_id in self.cameras:
                if store.store_id in self.offline:
                    continue
                cam = next(c for c in store.cameras if c.camera_id == cam_id)
                w = simulated_window(store, cam, start, end, rng)
                self.client.publish(self.topics.aggregate(store.store_id, cam_id),
                                    w.to_json(), qos=1)
                self.published += 1
            start = end

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, docker stop, kill) stops the demo as Ctrl-C does


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(args.workdir).resolve()
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"real_video_sources": [], "detector": None}
    started = time.monotonic()
    code = 1
    try:
        code = _run(args, workdir, summary)
        return code
    finally:
        # the last line, whatever happened: what reached the gateway while the demo ran
        since = summary.get("counted_since")
        summary.update(_stored_windows(workdir / "gateway.db", since if isinstance(since, str)
                                       else None))
        summary.update(duration_s=round(time.monotonic() - started, 1), exit_code=code)
        print(json.dumps(summary), flush=True)


def _run(args: argparse.Namespace, workdir: Path, summary: dict[str, object]) -> int:
    broker = _start_broker(workdir, args.embedded_broker)
    children: list[Child] = []
    sim: SimulatedEdges | None = None
    try:
        tokens = demo_setup.prepare_database(workdir, weeks=args.weeks)
        # seeded windows were received before this instant; live ones arrive a window later
        summary["counted_since"] = (utcnow() + timedelta(seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        gw_conf = demo_setup.write_gateway_config(
            workdir, broker.host, broker.port, args.host, args.port,
            mqtt5=isinstance(broker, Mosquitto))
        exe = [sys.executable, "-m", "storesense.cli"]
        children.append(_spawn("gateway", [*exe, "gateway", "run", "--config", str(gw_conf)],
                               workdir))
        plan = _pipeline(args)
        summary.update(real_video_sources=plan.videos,
                       detector=plan.detector if plan.videos else None)
        live = _start_edges(plan, workdir, broker, args.window_s, children, exe)
        simulated = [(s, c.camera_id) for s in DEMO_STORES for c in s.cameras
                     if (s, c.camera_id) not in live]
        sim = SimulatedEdges(broker.host, broker.port, simulated, args.window_s,
                             offline_stores={DEMO_STORES[-1].store_id})
        sim.start()
        print(f"simulated edge aggregates (labelled simulated) for {len(simulated)} cameras")
        demo_setup.wait_http(f"http://{args.host}:{args.port}/api/v1/health", 60,
                             children[0].proc)
        url = f"http://{args.host}:{args.port}/"
        print(f"\ndashboards: {url}")
        for name, token in tokens.items():
            print(f"  sign in as {name:28} token {token}")
        print(f"logs and data: {workdir}   (Ctrl-C stops everything)\n")
        return _supervise(children, args.duration)
    finally:
        if sim is not None:
            sim.stop()
        _stop_children(children)
        broker.stop()
        print("demo stopped: broker, gateway and edge nodes ended")


def _start_edges(plan: RealPipeline, workdir: Path, broker: Mosquitto | EmbeddedBroker,
                 window_s: int, children: list[Child],
                 exe: list[str]) -> list[tuple[DemoStore, str]]:
    """One edge node per video, as the entrance camera of a store; the cameras they cover."""
    live: list[tuple[DemoStore, str]] = []
    demographics = bool(plan.videos) and not _missing_demographics()
    for store, video in zip(DEMO_STORES, plan.videos, strict=False):
        conf = demo_setup.write_edge_config(
            workdir, store, video, broker.host, broker.port, window_s, demographics,
            mqtt5=isinstance(broker, Mosquitto), detector=plan.detector, reid=plan.reid)
        children.append(_spawn(f"edge-{store.store_id}",
                               [*exe, "edge", "run", "--config", str(conf)], workdir))
        live.append((store, "entrance"))
        print(f"edge node {store.store_id}/entrance: real pipeline on {video} (looped, "
              f"detector {plan.detector})")
    if not plan.videos:
        print("no video found or --no-video: every camera is SIMULATED")
    return live


def _supervise(children: list[Child], duration: float) -> int:
    deadline = time.monotonic() + duration if duration > 0 else None
    reported: set[str] = set()
    try:
        while deadline is None or time.monotonic() < deadline:
            for c in children:
                if c.proc.poll() is not None and c.name not in reported:
                    reported.add(c.name)
                    tail = c.log_path.read_text(errors="replace")[-1500:]
                    print(f"{c.name} exited with {c.proc.returncode}; last log lines:\n{tail}")
            if children and children[0].name in reported:
                return 1  # no gateway, no demo
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...")
    return 0
