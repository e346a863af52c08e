"""`storesense gateway run --config gateway.toml`: MQTT ingest and the API in one process.

The API runs under uvicorn in the main thread; ingest runs in paho's thread plus a writer
thread. SIGTERM/Ctrl-C: uvicorn stops, the writer commits and acks what it holds.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import re
import signal
import threading
from pathlib import Path

import psycopg
import uvicorn

from gateway import alerts_runner, overview_warmup
from gateway.api import create_app
from gateway.config import GatewaySettings, MqttSettings, load
from gateway.config_publisher import ConfigPublisher
from gateway.feed import FeedRunner
from gateway.http_limits import uvicorn_limits
from gateway.ingest import Ingestor, tune_interpreter
from gateway.storage import Storage
from storesense.errors import ConfigError
from storesense.schema import utcnow
from storesense.topics import Topics

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="gateway.toml")
    parser.add_argument("--no-api", action="store_true", help="ingest only (extra workers)")


def run(args: argparse.Namespace) -> int:
    settings = load(args.config)
    serve(settings, api=not args.no_api)
    return 0


def worker_mqtt(settings: GatewaySettings, index: int) -> MqttSettings:
    """With several workers each gets a fixed derived client id, so it finds its own
    persistent session again after a restart. Workers 1, 2, ... also log in as
    ``<username>-<index>`` (make_auth.py --gateway-workers): deploy/mosquitto makes the user
    name the client id, so workers sharing one user would take over each other's session."""
    if settings.ingest.workers == 1:
        return settings.mqtt
    m = settings.mqtt
    user = f"{m.username}-{index}" if m.username and index > 0 else m.username
    return m.model_copy(update={"client_id": f"{m.client_id}-w{index}", "username": user})


def _open_storage(settings: GatewaySettings) -> Storage:
    """The gateway's storage; a PostgreSQL that cannot be reached (or refuses us) fails the
    start naming the field, as any other bad setting does."""
    try:
        return Storage(settings.database, Topics(settings.mqtt.topic_prefix),
                       synchronous=settings.synchronous, checks=settings.checks,
                       dead_letters=settings.dead_letters, retention=settings.retention)
    except (psycopg.OperationalError, ValueError) as e:
        if settings.database_url is None:
            raise
        raise ConfigError(f"database_url: cannot use {_redacted(settings.database_url)}: "
                          f"{str(e).strip()}") from e


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def _start_ingestor(settings: GatewaySettings, storage: Storage, index: int) -> Ingestor:
    """Ingest process ``index``'s subscriber, started (its switch interval set first)."""
    tune_interpreter(settings.ingest.gil_switch_ms)
    ingestor = Ingestor(worker_mqtt(settings, index), storage, settings.ingest.batch_max,
                        settings.ingest.batch_ms)
    ingestor.start()
    return ingestor


def _ingest_worker(settings: GatewaySettings, index: int) -> None:
    """An extra ingest process: leaves when told (SIGTERM) or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    parent = os.getppid()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    storage = _open_storage(settings)
    ingestor = _start_ingestor(settings, storage, index)
    while not done.wait(1.0) and os.getppid() == parent:
        pass
    ingestor.stop()
    storage.close()


def _start_workers(settings: GatewaySettings) -> list[mp.process.BaseProcess]:
    ctx = mp.get_context("spawn")
    procs: list[mp.process.BaseProcess] = [
        ctx.Process(target=_ingest_worker, args=(settings, i), name=f"ingest-{i}")
        for i in range(1, settings.ingest.workers)]
    for p in procs:
        p.start()
    return procs


def serve(settings: GatewaySettings, api: bool = True) -> None:
    if settings.database_url is None:
        settings.db.parent.mkdir(parents=True, exist_ok=True)
    storage = _open_storage(settings)  # runs migrations before the workers start
    workers = _start_workers(settings)
    ingestor = _start_ingestor(settings, storage, 0)
    feed_stop = threading.Event()
    # Only the API process runs the feed: two runners on one database would both send the
    # pending batch.
    feed_thread = _start_feed(settings, feed_stop) if api else None
    publisher = _start_hq_tasks(settings, storage, ingestor, feed_stop) if api else None
    try:
        if api:
            # the overview's units read in the background (gateway/overview_warmup.py)
            overview_warmup.start(storage, utcnow, settings.status_interval_s)
            app = create_app(settings, storage, ingest=ingestor.health)
            app.state.config_publisher = publisher
            uvicorn.run(app, host=settings.api.host, port=settings.api.port,
                        log_level="warning", **uvicorn_limits(settings.api))
        else:
            _wait_for_signal()
    finally:
        feed_stop.set()
        if feed_thread is not None:
            feed_thread.join(timeout=settings.feed.timeout_s + 5)
        if publisher is not None:
            publisher.stop()
        for p in workers:
            p.terminate()  # SIGTERM: each commits and acks what it holds
        ingestor.stop()
        for p in workers:
            p.join(15)
        storage.close()
        log.info("gateway stopped: %s", ingestor.stats)


def _start_hq_tasks(settings: GatewaySettings, storage: Storage, ingestor: Ingestor,
                    stop: threading.Event) -> ConfigPublisher | None:
    """The API process's own threads: camera configurations published to the broker
    (gateway/config_publisher.py) and the alert task (gateway/alerts_runner.py)."""
    alerts_runner.start(storage, settings.alerts, stop, ingestor.connected.is_set)
    if settings.mqtt.username and not settings.config_publish.username:
        # A broker with users names each client by its user (deploy/mosquitto): a second
        # connection as the ingest's user would take over the ingest's session.
        log.warning("camera configurations are not published: set [config_publish] "
                    "username (make_auth.py's 'hq' user) and password")
        return None
    publisher = ConfigPublisher(settings.mqtt, settings.config_publish, storage)
    publisher.start()
    threading.Thread(target=publisher.run_forever, args=(stop,), name="config-publish",
                     daemon=True).start()
    return publisher


def _start_feed(settings: GatewaySettings, stop: threading.Event) -> threading.Thread | None:
    if not (settings.feed.push_url or settings.feed.export_dir):
        return None
    runner = FeedRunner(settings.database, settings.feed)
    thread = threading.Thread(target=runner.run_forever, args=(stop,), name="feed", daemon=True)
    thread.start()
    log.info("feed started: push %s, export %s", settings.feed.push_url or "off",
             settings.feed.export_dir or "off")
    return thread


def _wait_for_signal() -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
