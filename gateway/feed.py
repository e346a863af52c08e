"""The gateway's feed to the chain's central data platform: HTTP batch push and lake files.

Interface for the gateway service (the ``[feed]`` section of the gateway config is FeedConfig)::

    runner = FeedRunner(db, config.feed)           # db: the gateway's SQLite file or URL
    report = runner.run_once()                     # push the backlog, then export; FeedReport
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,),
                              name="feed", daemon=True)
    thread.start()
    ...                                            # on shutdown:
    stop.set(); thread.join(timeout=config.feed.timeout_s + 5)
    runner.last_report, runner.push_stopped        # for health / status endpoints

The feed only reads the ``windows`` table (``seq`` is an append-only cursor: rows are
insert-or-ignore on message_id and never updated) and keeps its own state in ``feed_cursors``.
Each run opens its own connection (SQLite or PostgreSQL, gateway/db.py), so the runner can
live in any thread.

Delivery is at least once: a batch is the seq range ``first..last``; the range is written to
``feed_cursors`` as *pending* before the first attempt, and the same range (same rows, same
``batch_id`` and ``Idempotency-Key``) is resent until the receiver answers 2xx, including after a
restart. Only then does the cursor move to ``last``, in the same SQLite transaction that clears
the pending range. Export files use the same pending-range rule, so re-running never duplicates.
See docs/feed.md.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.db import DB_HELP, Database, connect, is_postgres
from gateway.db import target as db_target
from gateway.feed_export import (
    ExportFormat,
    FeedError,
    WindowRow,
    read_rows,
    record_json,
    write_partitions,
)
from storesense.config import load_toml

log = logging.getLogger("storesense.gateway.feed")

# Statuses worth retrying: the receiver is overloaded, restarting or asked us to slow down.
# Any other 4xx means the request itself is wrong; resending it cannot help.
RETRYABLE_4XX = frozenset({408, 429})


class FeedConfig(BaseModel):
    """``[feed]`` in the gateway config. Push is off without push_url, export off without
    export_dir."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "platform", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="feed name: prefix of batch ids and key of the push cursor",
    )
    push_url: str | None = Field(
        None, pattern=r"^https?://", description="receiver of POSTed batches; None: no push"
    )
    push_token: SecretStr | None = Field(None, description="sent in push_token_header")
    push_token_header: str = Field(
        "Authorization", min_length=1, max_length=64,
        description="header for push_token; 'Authorization' sends 'Bearer <token>', any other "
        "header (e.g. X-Api-Key) sends the token as is",
    )
    batch_size: int = Field(500, ge=1, le=10_000, description="windows per pushed batch")
    max_retries: int = Field(
        8, ge=0, le=100, description="retries of one batch in one run before giving up until "
        "the next run (the batch is kept pending, nothing is skipped)",
    )
    backoff_initial_s: float = Field(0.5, gt=0.0, le=60.0, description="first retry delay")
    backoff_max_s: float = Field(60.0, gt=0.0, le=3600.0, description="retry delay ceiling")
    retry_after_max_s: float = Field(
        300.0, ge=0.0, le=3600.0, description="longest Retry-After honoured from a 429/503"
    )
    timeout_s: float = Field(30.0, gt=0.0, le=600.0, description="HTTP timeout per request")
    push_gzip: bool = Field(
        False, description="send bodies with Content-Encoding: gzip (~8x smaller, costs CPU); "
        "only if the receiver accepts it",
    )
    interval_s: float = Field(10.0, ge=0.05, le=86_400.0, description="pause between pushes")
    export_dir: Path | None = Field(None, description="data-lake root; None: no export")
    export_format: ExportFormat = "parquet"
    export_batch_size: int = Field(
        10_000, ge=1, le=200_000,
        description="windows per export file at most (bounds memory: payloads are ~5 kB)",
    )
    export_interval_s: float = Field(
        900.0, ge=0.05, le=86_400.0,
        description="pause between exports; long enough that the lake gets few, large files",
    )

    @model_validator(mode="after")
    def _backoff_bounds(self) -> FeedConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s "
                f"({self.backoff_initial_s})"
            )
        return self


@dataclass
class FeedReport:
    """What one run did. ``push_error``/``export_error`` name what failed; nothing was skipped."""

    pushed_records: int = 0
    pushed_batches: int = 0
    retries: int = 0
    push_cursor: int = 0
    backlog: int = 0
    push_error: str | None = None
    push_permanent: bool = False
    exported_records: int = 0
    export_files: list[Path] = field(default_factory=list)
    export_cursor: int = 0
    export_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.push_error is None and self.export_error is None


# --------------------------------------------------------------------------- cursors

CURSOR_DDL = """
CREATE TABLE IF NOT EXISTS feed_cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL DEFAULT 0,
    pending_first INTEGER,
    pending_last INTEGER,
    updated_at TEXT NOT NULL
)"""


def open_db(target: str | Path) -> Database:
    """A connection of our own; waits (not fails) while the ingest writer holds the lock."""
    db = connect(target)
    if not db.table_exists("feed_cursors"):  # skip the write lock on every later run
        with db.transaction():
            db.execute(CURSOR_DDL)
    return db


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_cursor(db: Database, name: str) -> tuple[int, tuple[int, int] | None]:
    """(committed seq, pending range or None) of a cursor; a new cursor starts at 0."""
    row = db.execute(
        "SELECT seq, pending_first, pending_last FROM feed_cursors WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        return 0, None
    pending = (int(row[1]), int(row[2])) if row[1] is not None else None
    return int(row[0]), pending


def _write_cursor(
    db: Database, name: str, seq: int, pending: tuple[int, int] | None
) -> None:
    first, last = pending if pending else (None, None)
    with db.transaction():
        db.execute(
            "INSERT INTO feed_cursors (name, seq, pending_first, pending_last, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, "
            "pending_first = excluded.pending_first, pending_last = excluded.pending_last, "
            "updated_at = excluded.updated_at",
            [name, seq, first, last, _now()],
        )


def _windows_exist(db: Database) -> bool:
    return db.table_exists("windows")


def next_range(db: Database, name: str, limit: int) -> tuple[int, int] | None:
    """The range to send next: the pending one if a previous attempt did not finish, else the
    next ``limit`` rows after the cursor, recorded as pending before anything leaves."""
    seq, pending = read_cursor(db, name)
    if pending is not None:
        return pending
    if not _windows_exist(db):
        return None
    row = db.execute(
        "SELECT min(seq), max(seq) FROM (SELECT seq FROM windows WHERE seq > ? "
        "ORDER BY seq LIMIT ?) AS next_rows",
        [seq, limit],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    rng = (int(row[0]), int(row[1]))
    _write_cursor(db, name, seq, rng)
    return rng


def commit_range(db: Database, name: str, last: int) -> None:
    _write_cursor(db, name, last, None)


def backlog(db: Database, name: str) -> int:
    if not _windows_exist(db):
        return 0
    seq, _ = read_cursor(db, name)
    return int(db.execute("SELECT count(*) FROM windows WHERE seq > ?", [seq]).fetchone()[0])


# --------------------------------------------------------------------------- HTTP push


def retry_after_s(resp: httpx.Response) -> float | None:
    """Seconds asked for by Retry-After (delta-seconds or HTTP-date), or None."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Pusher:
    """POSTs one batch until 2xx, with exponential backoff, jitter and Retry-After."""

    def __init__(self, config: FeedConfig, rng: random.Random | None = None) -> None:
        if config.push_url is None:
            raise FeedError("feed.push_url is not set; push is disabled", permanent=True)
        self.config = config
        self.url = config.push_url
        self.rng = rng or random.Random()
        self.client = httpx.Client(timeout=config.timeout_s, follow_redirects=False)
        self.headers = {"Content-Type": "application/json"}
        if config.push_token is not None:
            token = config.push_token.get_secret_value()
            header = config.push_token_header
            self.headers[header] = f"Bearer {token}" if header == "Authorization" else token

    def close(self) -> None:
        self.client.close()

    def backoff_s(self, attempt: int) -> float:
        # "Equal jitter": grows exponentially, never below half the step, and spreads many
        # gateways retrying against one recovering receiver.
        step = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2.0**attempt)
        return step * self.rng.uniform(0.5, 1.0)

    def _delay_for(self, resp: httpx.Response, attempt: int) -> float:
        asked = retry_after_s(resp)
        if asked is None:
            return self.backoff_s(attempt)
        return min(asked, self.config.retry_after_max_s)

    def post(self, batch_id: str, body: bytes, stop: threading.Event) -> int:
        """Deliver or raise FeedError; returns the number of retries it took."""
        headers = {**self.headers, "Idempotency-Key": batch_id}
        if self.config.push_gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        reason = ""
        for attempt in range(self.config.max_retries + 1):
            try:
                resp = self.client.post(self.url, content=body, headers=headers)
            except httpx.TransportError as e:
                reason = f"{type(e).__name__}: {e}"
                delay = self.backoff_s(attempt)
            else:
                code = resp.status_code
                if 200 <= code < 300:
                    return attempt
                if code < 500 and code not in RETRYABLE_4XX:
                    raise FeedError(
                        f"push of batch {batch_id} to {self.url} rejected with HTTP {code}: "
                        f"{resp.text[:500]!r}", permanent=True,
                    )
                reason = f"HTTP {code}: {resp.text[:200]!r}"
                delay = self._delay_for(resp, attempt)
            if attempt == self.config.max_retries:
                break
            log.warning("feed %s: batch %s attempt %d failed (%s); retry in %.2f s",
                        self.config.name, batch_id, attempt + 1, reason, delay)
            if stop.wait(delay):
                raise FeedError(f"push of batch {batch_id} interrupted by shutdown ({reason})")
        raise FeedError(
            f"push of batch {batch_id} to {self.url} failed after "
            f"{self.config.max_retries + 1} attempts; last error {reason}"
        )


def batch_body(batch_id: str, rows: list[WindowRow]) -> bytes:
    """``{"batch_id": ..., "records": [...]}`` assembled from ready JSON records."""
    records = ",".join(record_json(r) for r in rows)
    return f'{{"batch_id":{json.dumps(batch_id)},"records":[{records}]}}'.encode()


def push_backlog(
    db: Database, pusher: Pusher, report: FeedReport, stop: threading.Event
) -> None:
    """Push batch after batch until the backlog is empty, a push fails, or ``stop`` is set."""
    name = pusher.config.name
    while not stop.is_set():
        rng = next_range(db, name, pusher.config.batch_size)
        if rng is None:
            return
        first, last = rng
        rows = read_rows(db, first, last)
        if rows:  # empty only if retention deleted the range before it was sent
            batch_id = f"{name}:{first}-{last}"
            report.retries += pusher.post(batch_id, batch_body(batch_id, rows), stop)
            report.pushed_records += len(rows)
            report.pushed_batches += 1
        commit_range(db, name, last)
        report.push_cursor = last


# --------------------------------------------------------------------------- export


def export_cursor_name(config: FeedConfig) -> str:
    return f"export:{config.export_format}"


def export_backlog(
    db: Database, config: FeedConfig, out_dir: Path, report: FeedReport
) -> None:
    """Write new windows into dt= partitions, batch by batch, each committed after its files."""
    name = export_cursor_name(config)
    while True:
        rng = next_range(db, name, config.export_batch_size)
        if rng is None:
            return
        first, last = rng
        rows = read_rows(db, first, last)
        try:
            report.export_files += write_partitions(rows, out_dir, config.export_format)
        except OSError as e:
            raise FeedError(
                f"export of seq {first}-{last} to {out_dir} failed: {e}"
            ) from e
        report.exported_records += len(rows)
        commit_range(db, name, last)
        report.export_cursor = last


# --------------------------------------------------------------------------- runner


class FeedRunner:
    """Runs push and export against the gateway database; see the module docstring."""

    def __init__(self, db_path: str | Path, config: FeedConfig,
                 rng: random.Random | None = None) -> None:
        self.db_path: str | Path = db_path if is_postgres(db_path) else Path(db_path)
        self.config = config
        self.rng = rng
        self.last_report: FeedReport | None = None
        self.push_stopped: str | None = None  # reason, after a permanent push error

    def push_once(self, report: FeedReport, stop: threading.Event) -> None:
        if self.config.push_url is None or self.push_stopped:
            return
        db = open_db(self.db_path)
        pusher = Pusher(self.config, self.rng)
        try:
            report.push_cursor = read_cursor(db, self.config.name)[0]
            push_backlog(db, pusher, report, stop)
        except FeedError as e:
            report.push_error, report.push_permanent = str(e), e.permanent
        finally:
            report.backlog = backlog(db, self.config.name)
            pusher.close()
            db.close()

    def export_once(self, report: FeedReport) -> None:
        out_dir = self.config.export_dir
        if out_dir is None:
            return
        db = open_db(self.db_path)
        try:
            report.export_cursor = read_cursor(db, export_cursor_name(self.config))[0]
            export_backlog(db, self.config, out_dir, report)
        except FeedError as e:
            report.export_error = str(e)
        finally:
            db.close()

    def run_once(self, stop: threading.Event | None = None) -> FeedReport:
        """Push everything not yet acknowledged, then export everything not yet written."""
        report = FeedReport()
        stop = stop or threading.Event()
        self.push_once(report, stop)
        self.export_once(report)
        self.last_report = report
        return report

    def run_forever(self, stop: threading.Event) -> None:
        """Push every interval_s and export every export_interval_s until ``stop`` is set.

        A permanent push error (4xx other than 408/429) stops the push, logged with its reason
        and kept in ``push_stopped``; the cursor stays before the rejected batch. Export goes on.
        The loop ends by itself only when there is nothing left to run.
        """
        next_export = 0.0
        while not stop.is_set():
            report = FeedReport()
            self._guarded(partial(self.push_once, report, stop), report, "push")
            if report.push_permanent:
                self.push_stopped = report.push_error
                log.error("feed %s: push stopped: %s", self.config.name, report.push_error)
            if self.config.export_dir is not None and time.monotonic() >= next_export:
                self._guarded(partial(self.export_once, report), report, "export")
                next_export = time.monotonic() + self.config.export_interval_s
            self.last_report = report
            if report.push_error and not report.push_permanent:
                log.warning("feed %s: %s", self.config.name, report.push_error)
            if report.export_error:
                log.warning("feed %s: %s", self.config.name, report.export_error)
            if self._idle():
                return
            stop.wait(self._pause())

    def _guarded(
        self, step: Callable[[], None], report: FeedReport, what: Literal["push", "export"]
    ) -> None:
        # Nothing may kill the feed thread silently (a database or disk hiccup, a bug): log it
        # with its traceback, put it in the report, and let the next round retry.
        try:
            step()
        except Exception as e:
            msg = f"{what} failed unexpectedly: {e!r}"
            if what == "push":
                report.push_error = msg
            else:
                report.export_error = msg
            log.exception("feed %s: %s", self.config.name, msg)

    def _idle(self) -> bool:
        pushing = self.config.push_url is not None and self.push_stopped is None
        return not pushing and self.config.export_dir is None

    def _pause(self) -> float:
        if self.config.push_url is None or self.push_stopped:
            return self.config.export_interval_s
        return self.config.interval_s


# --------------------------------------------------------------------------- benchmark


def _fill_bench_db(path: Path, days: int) -> int:
    """A gateway database filled through Storage with simulated one-minute windows."""
    from itertools import islice

    from gateway.seed import store_records
    from gateway.storage import Storage
    from storesense.simulate import DEMO_STORES, history

    storage = Storage(path)
    try:
        storage.upsert_stores(store_records())
        windows = history(DEMO_STORES, datetime(2026, 11, 23, tzinfo=UTC), days, window_s=60)
        while chunk := list(islice(windows, 2000)):
            storage.store_windows(chunk)
        return int(storage.read().execute("SELECT count(*) FROM windows").fetchone()[0])
    finally:
        storage.close()


def bench(days: int = 1, batch_size: int = 500) -> dict[str, float]:
    """Push simulated windows to a loopback receiver that parses and dedupes, then export them
    to Parquet; records/s of each. The receiver runs in this process, so its JSON parsing
    shares the GIL with the sender: a conservative figure."""
    import tempfile
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: set[str] = set()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            for rec in json.loads(body)["records"]:  # the work a real receiver does at least
                seen.add(rec["message_id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        n = _fill_bench_db(path, days)
        url = f"http://127.0.0.1:{server.server_address[1]}/ingest"
        cfg = FeedConfig(push_url=url, batch_size=batch_size, export_dir=Path(tmp) / "lake")
        runner = FeedRunner(path, cfg)
        t0, c0 = time.perf_counter(), time.process_time()
        report = FeedReport()
        runner.push_once(report, threading.Event())
        t1, c1 = time.perf_counter(), time.process_time()
        runner.export_once(report)
        t2 = time.perf_counter()
        size_mb = path.stat().st_size / 1e6
    server.shutdown()
    server.server_close()
    if not report.ok or len(seen) != n or report.exported_records != n:
        raise FeedError(f"benchmark incomplete: {report}, received {len(seen)} of {n}")
    return {"records": n, "batch_size": batch_size, "db_mb": round(size_mb, 1),
            "push_s": round(t1 - t0, 3), "push_records_per_s": round(n / (t1 - t0)),
            # CPU seconds of sender and receiver together: steadier than wall time on a
            # shared machine, and what the push costs the gateway at most.
            "push_cpu_s": round(c1 - c0, 3), "push_records_per_cpu_s": round(n / (c1 - c0)),
            "parquet_export_s": round(t2 - t1, 3),
            "parquet_records_per_s": round(n / (t2 - t1))}


class _FeedSection(BaseModel):
    """Just the [feed] table of a gateway.toml; the other sections are the gateway's."""

    model_config = ConfigDict(extra="ignore")
    feed: FeedConfig = Field(default_factory=FeedConfig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.feed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", action="store_true",
                        help="measure push throughput against a loopback receiver")
    parser.add_argument("--days", type=int, default=1, help="simulated days (bench)")
    parser.add_argument("--batch-size", type=int, default=500, help="windows per batch (bench)")
    parser.add_argument("--once", action="store_true",
                        help="push and export once with --config's [feed] on --db; print report")
    parser.add_argument("--db", type=db_target, help=f"{DB_HELP} (--once)")
    parser.add_argument("--config", type=Path, help="gateway.toml with a [feed] table (--once)")
    args = parser.parse_args(argv)
    if args.bench:
        print(json.dumps(bench(args.days, args.batch_size)))
        return 0
    if args.once and args.db and args.config:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        cfg = load_toml(args.config, _FeedSection).feed
        report = FeedRunner(args.db, cfg).run_once()
        print(json.dumps(asdict(report), default=str, indent=2))
        return 0 if report.ok else 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
