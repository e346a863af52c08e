"""`storesense gateway run --config gateway.toml`: MQTT ingest and the API in one process.

The API runs under uvicorn in the main thread; ingest runs in paho's thread plus a writer
thread. SIGTERM/Ctrl-C: uvicorn stops, the writer commits and acks what it holds.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from gateway.api import create_app
from gateway.config import GatewaySettings, load
from gateway.ingest import Ingestor
from gateway.storage import Storage
from storesense.topics import Topics

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="gateway.toml")
    parser.add_argument("--no-api", action="store_true", help="ingest only (extra workers)")


def run(args: argparse.Namespace) -> int:
    settings = load(args.config)
    serve(settings, api=not args.no_api)
    return 0


def serve(settings: GatewaySettings, api: bool = True) -> None:
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    storage = Storage(settings.db, Topics(settings.mqtt.topic_prefix),
                      synchronous=settings.synchronous)
    ingestor = Ingestor(settings.mqtt, storage, settings.ingest.batch_max,
                        settings.ingest.batch_ms)
    ingestor.start()
    try:
        if api:
            app = create_app(settings, storage)
            uvicorn.run(app, host=settings.api.host, port=settings.api.port,
                        log_level="warning")
        else:
            _wait_for_signal()
    finally:
        ingestor.stop()
        storage.close()
        log.info("gateway stopped: %s", ingestor.stats)


def _wait_for_signal() -> None:
    import signal
    import threading

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
