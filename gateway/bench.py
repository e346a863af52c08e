"""`storesense bench gateway`: window aggregates through a real Mosquitto into the gateway.

The publisher runs in its own process (QoS 1, as an edge's outbox does); each gateway
ingest process (paho thread + writer thread + database) runs as in `gateway run`, several in
one MQTT 5 shared-subscription group with ``--workers N``, on SQLite (one file) or
PostgreSQL (``--engine postgresql``: a server started here, or ``--database-url``).
``--kill-after K`` SIGKILLs the first gateway once K windows are stored and starts it again
(same client id, so its persistent session's unacked messages come back to it).
``--heatmap 64x48`` adds a heatmap to every window: 19 kB windows, as busy as PETS09's.

Modes: ``backlog`` publishes everything while the gateway is away (the broker queues it in
the gateway's persistent session), then measures how fast the gateway drains it, the
"a chain's hour of backlog after an outage" case. ``live`` publishes while the gateway runs.
Prints JSON: messages, stored, duplicates, lost, msgs_per_s, payload bytes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import signal
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

from gateway.config import IngestSettings, MqttSettings
from gateway.db import Database, connect
from gateway.footprint import table_bytes
from gateway.ingest import Ingestor, tune_interpreter
from gateway.pg_local import PostgresServer
from gateway.storage import Storage
from storesense.broker import Mosquitto
from storesense.schema import WindowAggregatePacked, message_id
from storesense.topics import Topics

# Windows start at 09:00 UTC two days back, so that the gateway, which refuses windows
# outside its clock's horizon (gateway/plausible.py), takes them: 1M windows of 4,000 stores
# span 250 minutes. (A run that straddles midnight between the publisher process and this
# one would shift them by a day, which changes nothing measured.)
_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
T0 = _TODAY - timedelta(days=2) + timedelta(hours=9)
CHUNK = 2000
# an entrance camera's minute: a counting line, occupancy and demographics (~450 bytes)
TEMPLATE = (
    '{{"schema_version":1,"kind":"window","message_id":"{mid}","store_id":"{store}",'
    '"camera_id":"entrance","window_start":"{start}","window_end":"{end}","frames":900,'
    '"simulated":true,"lines":[{{"line":"door","in_count":{ins},"out_count":{outs}}}],'
    '"occupancy":{{"avg":{avg},"max":{mx}}},"zones":[],"transitions":[],"heatmap":null,'
    '"demographics":{{"age_bands":{{"<25":1,"25-34":{ins},"35-44":0,"45-54":0,"55-64":0,'
    '"65+":0,"unknown":0}},"genders":{{"female":{ins},"male":1,"unknown":0}}}},"paths":[]}}'
)


def store_ids(n: int) -> list[str]:
    return [f"st{i:05d}" for i in range(n)]


@lru_cache(maxsize=64)
def _cells_text(cols: int, rows: int, i: int) -> list[str]:
    """A camera's minute of foot points: seconds per cell, in thousandths as the edge rounds."""
    return [f"{((i + k) * 37 % 1000) / 997:.3f}" for k in range(cols * rows)]


@lru_cache(maxsize=64)
def heatmap_json(cols: int, rows: int, i: int) -> str:
    """The ``heatmap`` of a window: JSON numbers, as an edge sends by default."""
    return f'{{"cols":{cols},"rows":{rows},"cells":[{",".join(_cells_text(cols, rows, i))}]}}'


@lru_cache(maxsize=64)
def heatmap_packed_json(cols: int, rows: int, i: int) -> str:
    """The same cells as a PackedHeatmap (storesense/schema.py): base64 of uint32 thousandths."""
    ms = b"".join(int(c.replace(".", "")).to_bytes(4, "little") for c in _cells_text(cols, rows, i))
    return f'{{"cols":{cols},"rows":{rows},"cells_ms":"{base64.b64encode(ms).decode()}"}}'


def payload(i: int, stores: list[str], heatmap: tuple[int, int] | None = None,
            packed: bool = False) -> tuple[str, bytes]:
    """Message i: store i mod n, window i // n minutes after T0 (so every id is distinct);
    ``packed``: the heatmap as a WindowAggregatePacked's ``heatmap_packed``."""
    store = stores[i % len(stores)]
    start = T0 + timedelta(minutes=i // len(stores))
    ins = i % 7
    text = TEMPLATE.format(
        mid=message_id(store, "entrance", start), store=store,
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=(start + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ins=ins, outs=max(0, ins - 1), avg=1.5, mx=3)
    if heatmap is not None and packed:
        text = text[:-1] + ',"heatmap_packed":' + heatmap_packed_json(*heatmap, i % 7) + "}"
    elif heatmap is not None:
        text = text.replace('"heatmap":null', '"heatmap":' + heatmap_json(*heatmap, i % 7))
    return Topics().aggregate(store, "entrance"), text.encode()


def _publish(host: str, port: int, n: int, n_stores: int, done: Any,
             heatmap: tuple[int, int] | None, packed: bool, results: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    stores = store_ids(n_stores)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher",
                    protocol=mqtt.MQTTv5)
    # paho walks its whole outgoing queue on every PUBACK, so publish in chunks that fit the
    # in-flight window instead of queueing everything at once
    c.max_inflight_messages_set(CHUNK)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    c.loop_start()
    for first in range(0, n, CHUNK):
        infos = [c.publish(*payload(i, stores, heatmap, packed), qos=1)
                 for i in range(first, min(n, first + CHUNK))]
        for info in infos:
            info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()
    use = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"publisher_cpu_s": use.ru_utime + use.ru_stime})
    done.set()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", help="host:port of a running broker (default: start "
                        "Mosquitto on a free port)")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--stores", type=int, default=4000)
    parser.add_argument("--mode", choices=("backlog", "live"), default="backlog")
    defaults = IngestSettings.model_fields
    parser.add_argument("--batch-max", type=int, default=defaults["batch_max"].default)
    parser.add_argument("--batch-ms", type=float, default=defaults["batch_ms"].default)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="FULL",
                        help="as the gateway's setting (default FULL, like the gateway)")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5",
                        help="the gateway's MQTT version (3.1.1 parses no properties)")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway ingest processes in one shared subscription group, "
                        "writing one SQLite file")
    parser.add_argument("--gil-switch-ms", type=float,
                        default=defaults["gil_switch_ms"].default,
                        help="as the gateway's ingest.gil_switch_ms")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help="an existing PostgreSQL (emptied first); "
                        "default with --engine postgresql: a server started in the workdir")
    parser.add_argument("--kill-after", type=int, default=0,
                        help="SIGKILL the first gateway once this many windows are stored, "
                        "then start it again")
    parser.add_argument("--heatmap", help="COLSxROWS: add a heatmap to every window "
                        "(64x48: 19 kB windows; 32x18, the edge default: 4 kB)")
    parser.add_argument("--heatmap-encoding", choices=("json", "packed"), default="json",
                        help="json: cells as JSON numbers (every edge); packed: a "
                        "WindowAggregatePacked's uint32 thousandths (issue 17)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--workdir", type=Path, help="keep the database here")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="storesense-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        args.target = work / "bench.db"
        args.servers = {}  # name -> pid of a server started here, whose CPU is reported
        if args.engine == "postgresql":
            # durable (fsync on), as a production server: a commit is on disk before its ack
            if args.database_url:
                args.target = args.database_url
            else:
                server = stack.enter_context(PostgresServer(durable=True))
                args.target = server.new_database_url()
                args.servers["postgresql"] = server.pid()
            _empty(args.target)
        if args.broker:
            host, _, port = args.broker.rpartition(":")
            print(json.dumps(_bench(args, host, int(port), work)))
        else:
            # mosquitto's default autosave (30 min) instead of the test helper's 1 s, which
            # rewrites the whole queue file every second while a backlog is queued
            with Mosquitto(work / "broker", extra="autosave_interval 1800") as broker:
                assert broker.proc is not None
                args.servers["broker"] = broker.proc.pid
                print(json.dumps(_bench(args, broker.host, broker.port, work)))
    return 0


def _empty(url: str) -> None:
    conn = connect(url)
    try:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables "
                                     "WHERE schemaname = current_schema()").fetchall():
            conn.execute(f"DROP TABLE {table} CASCADE")
    finally:
        conn.close()


def _register(db: Path | str, n: int) -> None:
    storage = Storage(db)
    storage.upsert_stores([{"store_id": s, "name": s, "timezone": "Europe/London",
                            "cameras": [{"camera_id": "entrance", "role": "entrance"}]}
                           for s in store_ids(n)])
    storage.close()


def _worker(settings: MqttSettings, db: Path | str, args: argparse.Namespace, go: Any,
            halt: Any, results: Any) -> None:
    """One gateway ingest process (what `gateway run --no-api` runs)."""
    tune_interpreter(args.gil_switch_ms)
    storage = Storage(db, synchronous=args.synchronous)
    ingestor = Ingestor(settings, storage, args.batch_max, args.batch_ms)
    # polled, never waited on: a process SIGKILLed while waiting on a shared Event leaves
    # its condition variable with a sleeper that never wakes, and set() then hangs
    while not go.is_set():
        time.sleep(0.05)
    start = resource.getrusage(resource.RUSAGE_SELF)  # imports, migrations, the registry
    ingestor.start()
    while not halt.is_set():
        time.sleep(0.1)
    ingestor.stop()
    storage.close()
    # CPU seconds of this gateway process (all its threads): per message, a figure that the
    # other load on a shared machine disturbs much less than msgs/s
    use = resource.getrusage(resource.RUSAGE_SELF)
    results.put({**asdict(ingestor.stats), "cpu_s": use.ru_utime + use.ru_stime,
                 "start_cpu_s": start.ru_utime + start.ru_stime})


def _own_cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _pg_background_cpu_s(pid: int) -> float:
    """CPU seconds of a PostgreSQL server's own processes alive now (WAL writer,
    checkpointer, background writer, autovacuum...): the rest of ``_cpu_s`` is its
    backends, the gateways' connections and the progress poll's (an exited backend's time
    is only in the postmaster's children_* total)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if "[local]" not in " ".join(child.cmdline()):
                    c = child.cpu_times()
                    total += c.user + c.system
    return total


def _cpu_s(pid: int) -> float:
    """CPU seconds of a server: the process, its children alive and those it reaped (a
    PostgreSQL backend's time moves to the postmaster's children_* when it exits)."""
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return float(total)
    except psutil.Error:
        return 0.0


# Progress is polled 20 times a second from the daily rollup (a row per store and day),
# which the same transaction as the windows fills: COUNT(*) of the windows themselves
# scans every stored window at each poll, CPU that the database serving the gateways then
# lacked. The totals at the end count the windows.
PROGRESS_SQL = "SELECT SUM(windows) FROM rollup_day"


def _count(conn: Database, sql: str = "SELECT COUNT(*) FROM windows") -> int:
    return int(conn.execute(sql).fetchone()[0] or 0)


def _bench(args: argparse.Namespace, host: str, port: int, work: Path) -> dict[str, Any]:
    heatmap = tuple(int(x) for x in args.heatmap.split("x")) if args.heatmap else None
    packed = args.heatmap_encoding == "packed"
    sample = payload(0, store_ids(args.stores), heatmap, packed)[1]  # type: ignore[arg-type]
    WindowAggregatePacked.from_json(sample)  # realistic
    db = args.target
    if isinstance(db, Path):
        for p in work.glob("bench.db*"):
            p.unlink()
    _register(db, args.stores)
    ctx = mp.get_context("spawn")
    go, halt, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    published = ctx.Queue()
    group = "bench" if args.workers > 1 else None
    run_id = time.time_ns()
    settings = [MqttSettings(host=host, port=port, client_id=f"bench-gw-{run_id}-{i}",
                             shared_group=group, protocol=args.protocol)
                for i in range(args.workers)]
    workers = [ctx.Process(target=_worker, args=(s, db, args, go, halt, results))
               for s in settings]
    for w in workers:
        w.start()
    publisher = ctx.Process(target=_publish, args=(host, port, args.messages, args.stores,
                                                   done, heatmap, packed, published))
    for s in settings:
        # the session must exist before the first publish, or the broker drops what it
        # has no subscriber for (in live mode too: workers connect after the start signal)
        _create_session(s)
    if args.mode == "backlog":
        publisher.start()
        publisher.join()
    t0 = time.monotonic()
    servers_cpu0 = {name: _cpu_s(pid) for name, pid in args.servers.items()}
    pg_pid = args.servers.get("postgresql")
    pg_background0 = _pg_background_cpu_s(pg_pid) if pg_pid else 0.0
    own_cpu0 = _own_cpu_s()
    go.set()
    if args.mode == "live":
        publisher.start()
    stored = 0
    killed_at = None
    killed_cpu_s = 0.0
    # one connection for every poll: a new one each time would start a PostgreSQL backend
    # 20 times a second on the server being measured
    probe = connect(db)
    while stored < args.messages and time.monotonic() < t0 + args.timeout:
        time.sleep(0.05)
        stored = _count(probe, PROGRESS_SQL)
        if args.kill_after and killed_at is None and stored >= args.kill_after:
            killed_at = stored
            killed_cpu_s = _cpu_s(workers[0].pid or 0)  # its own report dies with it
            os.kill(workers[0].pid or 0, signal.SIGKILL)  # no commit, no ack, no goodbye
            workers[0].join(10)
            workers[0] = ctx.Process(target=_worker, args=(settings[0], db, args, go, halt,
                                                           results))
            workers[0].start()
    elapsed = time.monotonic() - t0
    servers_cpu = {name: _cpu_s(pid) - servers_cpu0[name] for name, pid in args.servers.items()}
    pg_background = _pg_background_cpu_s(pg_pid) - pg_background0 if pg_pid else 0.0
    poller_cpu_s = _own_cpu_s() - own_cpu0
    halt.set()
    stats = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    publisher_cpu_s = published.get(timeout=60)["publisher_cpu_s"]
    publisher.join(30)
    with contextlib.closing(probe):
        stored = _count(probe)
        counted = _count(probe, "SELECT SUM(windows) FROM rollup_hour")
        window_bytes = table_bytes(probe).get("windows", 0)
    received = sum(st["received"] for st in stats)
    gateways_cpu_s = killed_cpu_s + sum(st["cpu_s"] for st in stats)
    per_window = {"gateways": gateways_cpu_s, **servers_cpu}
    return {
        "engine": args.engine, "killed_at": killed_at,
        "windows_bytes_per_window": round(window_bytes / max(1, stored)),
        "rollup_windows": counted, "counted_twice": counted - stored,
        "mode": args.mode, "workers": args.workers, "messages": args.messages,
        "stored": stored, "duplicates": sum(st["duplicates"] for st in stats),
        # of those, redelivered copies told apart by a lookup, without decoding them
        "redelivered_copies": sum(st["redelivered_copies"] for st in stats),
        "dead": sum(st["dead"] for st in stats), "lost": args.messages - stored,
        "seconds": round(elapsed, 2), "msgs_per_s": round(stored / elapsed),
        "received": received, "payload_bytes": len(sample),
        "heatmap_encoding": args.heatmap_encoding if heatmap else None,
        "batches": sum(st["batches"] for st in stats), "synchronous": args.synchronous,
        "protocol": args.protocol, "gil_switch_ms": args.gil_switch_ms,
        "write_s": [round(st["write_s"], 2) for st in stats],
        # when each gateway committed its last batch, from the start of the drain: in
        # backlog mode the broker gave each session its share of the group's messages as
        # they were published, so a gateway that was killed drains its share after the other
        "last_commit_s": [round(st["last_commit_at"] - t0, 2) for st in stats],
        "gateway_cpu_us_per_msg": round(1e6 * sum(st["cpu_s"] for st in stats)
                                        / max(1, received), 1),
        # while draining: what the database server and the broker spent per stored window
        **{f"{name}_cpu_us_per_msg": round(1e6 * cpu / max(1, stored), 1)
           for name, cpu in servers_cpu.items()},
        # per stored window, all in: the gateways' CPU with the SIGKILLed one's, the
        # redelivered copies it left and each process's start (imports, migrations, the
        # registry: "gateway_start_cpu_s" of those that finished); the publisher's CPU per
        # message, spent before the drain in backlog mode (while it, in live mode)
        "cpu_us_per_window": {name: round(1e6 * cpu / max(1, stored), 1)
                              for name, cpu in per_window.items()},
        "gateway_start_cpu_s": [round(st["start_cpu_s"], 2) for st in stats],
        # of PostgreSQL's: its own processes (the rest is its backends); this process's
        # CPU while it polled the progress and read the others' CPU
        "postgresql_background_cpu_us_per_window": round(1e6 * pg_background / max(1, stored),
                                                         1),
        "bench_poller_cpu_us_per_window": round(1e6 * poller_cpu_s / max(1, stored), 1),
        "publisher_cpu_us_per_msg": round(1e6 * publisher_cpu_s / max(1, args.messages), 1),
        "publisher_during_drain": args.mode == "live",
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def _create_session(s: MqttSettings) -> None:
    """Connect once with a gateway's client id and subscribe, then leave: the broker now
    holds a persistent session that queues everything published meanwhile."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if s.protocol == "5":
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                        protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        c.connect(s.host, s.port, clean_start=False, properties=props)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                        protocol=mqtt.MQTTv311, clean_session=False)
        c.connect(s.host, s.port)
    c.loop_start()
    subscribed = threading.Event()
    c.on_subscribe = lambda *_: subscribed.set()
    topics = Topics(s.topic_prefix)
    subs = [topics.all_aggregates(), topics.all_status()]
    c.subscribe([(topics.shared(s.shared_group, t) if s.shared_group else t, 1) for t in subs])
    if not subscribed.wait(10):
        raise RuntimeError("broker did not acknowledge the bench subscription")
    c.disconnect()
    c.loop_stop()
