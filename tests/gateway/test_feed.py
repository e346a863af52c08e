"""The data-platform feed against a real HTTP receiver on loopback that fails on purpose.

The receiver dedupes by Idempotency-Key the way a platform's ingest endpoint should; the tests
check what the platform ends up with: every stored window, exactly once after dedupe, in seq
order, with the cursor only ever behind what was acknowledged.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sqlite_utils
from pydantic import ValidationError

from gateway.feed import FeedConfig, FeedRunner, main, open_db, read_cursor
from gateway.seed import store_records
from gateway.storage import Storage
from storesense.errors import ConfigError
from storesense.schema import Demographics, WindowAggregate
from storesense.simulate import DEMO_STORES, history
from tests.gateway.helpers import recent_day, window

# --------------------------------------------------------------------------- windows table


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def store_windows(path: Path, windows: Iterable[WindowAggregate]) -> None:
    """Fill the windows table through the gateway's own write path (real Storage)."""
    storage = Storage(path)
    try:
        storage.upsert_stores(store_records())
        result = storage.store_windows(windows)
        assert result.dead == 0, result
    finally:
        storage.close()


def stored(path: Path) -> list[dict[str, Any]]:
    db = sqlite_utils.Database(path)
    rows = list(db.query("SELECT * FROM windows ORDER BY seq"))
    db.conn.close()
    return rows


DAY_1 = datetime(2026, 11, 21, tzinfo=UTC)
DAY_2 = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def windows() -> list[WindowAggregate]:
    """Two UTC days of hourly windows from the demo stores (a few hundred, real aggregates)."""
    return list(history(DEMO_STORES, DAY_1, days=2, window_s=3600, seed=3))


@pytest.fixture(scope="module")
def later_windows() -> list[WindowAggregate]:
    return list(history(DEMO_STORES, DAY_2, days=1, window_s=3600, seed=4))


@pytest.fixture
def db_path(tmp_path: Path, windows: list[WindowAggregate]) -> Path:
    path = tmp_path / "gateway.db"
    store_windows(path, windows)
    return path


# --------------------------------------------------------------------------- receiver

OK, E503, E429, E400, DROP_BEFORE, DROP_AFTER, HANG = (
    "ok", "503", "429", "400", "drop_before", "drop_after", "hang"
)


@dataclass
class Arrival:
    n: int
    key: str
    action: str
    at: float
    headers: dict[str, str]


@dataclass
class Receiver:
    """Accepts POSTed batches; ``plan(n)`` says what request number n gets (1-based)."""

    plan: Callable[[int], str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: list[Arrival] = field(default_factory=list)
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    duplicates: int = 0
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)

    def records(self) -> list[dict[str, Any]]:
        """Everything accepted after dedupe, in order of acceptance."""
        with self.lock:
            return [r for recs in self.accepted.values() for r in recs]

    def decide(self, key: str, headers: dict[str, str]) -> str:
        with self.lock:
            n = len(self.arrivals) + 1
            action = self.plan(n)
            self.arrivals.append(Arrival(n, key, action, time.monotonic(), headers))
            return action

    def accept(self, key: str, doc: dict[str, Any]) -> None:
        with self.lock:
            if key in self.accepted:
                self.duplicates += 1
            else:
                self.accepted[key] = doc["records"]


class Handler(BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_POST(self) -> None:
        rx = self.server.rx
        body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("Idempotency-Key", "")
        action = rx.decide(key, dict(self.headers.items()))
        if action == DROP_BEFORE:
            return self._drop()
        if action == E429:
            return self._reply(429, {"error": "slow down"}, {"Retry-After": "1"})
        if action == E503:
            return self._reply(503, {"error": "restarting"})
        if action == E400:
            return self._reply(400, {"error": "store_id not allowed for this tenant"})
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        doc = json.loads(body)
        if doc["batch_id"] != key or self.headers["Content-Type"] != "application/json":
            return self._reply(422, {"error": "batch_id and Idempotency-Key differ"})
        rx.accept(key, doc)
        if action == DROP_AFTER:  # stored, but the sender never hears so: it must resend
            return self._drop()
        if action == HANG:  # stored, then no answer until the test says so (bounded)
            rx.release.wait(20)
            return self._drop()
        self._reply(200, {"accepted": len(doc["records"])})

    def _reply(self, code: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rx: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.rx = rx


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int], str]], Receiver]]:
    servers: list[ReceiverServer] = []

    def start(plan: Callable[[int], str]) -> Receiver:
        rx = Receiver(plan)
        server = ReceiverServer(rx)
        rx.url = f"http://127.0.0.1:{server.server_address[1]}/v1/storesense/windows"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return rx

    yield start
    for s in servers:
        s.rx.release.set()
        s.shutdown()
        s.server_close()


def fast(rx: Receiver, **kw: Any) -> FeedConfig:
    """Small batches and short backoff so a few hundred windows make many failing requests."""
    base: dict[str, Any] = {"push_url": rx.url, "batch_size": 25, "max_retries": 5,
                            "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}
    return FeedConfig(**{**base, **kw})


def assert_exactly_once_in_order(rx: Receiver, db_path: Path) -> None:
    got = rx.records()
    rows = stored(db_path)
    assert [r["message_id"] for r in got] == [r["message_id"] for r in rows]
    assert [r["seq"] for r in got] == [r["seq"] for r in rows]


def cursor(db_path: Path, name: str = "platform") -> tuple[int, tuple[int, int] | None]:
    db = open_db(db_path)
    try:
        return read_cursor(db, name)
    finally:
        db.close()


def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# --------------------------------------------------------------------------- push


def flaky(n: int) -> str:
    """429 once, a connection dropped before and one after the receiver stored the batch,
    and every third request a 503."""
    return {2: E429, 4: DROP_BEFORE, 5: DROP_AFTER}.get(n, E503 if n % 3 == 0 else OK)


def test_push_delivers_every_window_once_after_dedupe_despite_failures(
    db_path: Path, serve: Callable[..., Receiver]
) -> None:
    rx = serve(flaky)
    report = FeedRunner(db_path, fast(rx, push_token="t0k")).run_once()

    assert report.ok, report
    rows = stored(db_path)
    assert report.pushed_records == len(rows) > 200
    assert_exactly_once_in_order(rx, db_path)
    assert rx.duplicates == 1  # the batch whose 200 was lost was sent again, same key
    assert cursor(db_path) == (rows[-1]["seq"], None)
    assert report.backlog == 0
    actions = [a.action for a in rx.arrivals]
    assert {E429, E503, DROP_BEFORE, DROP_AFTER} <= set(actions)
    # Retry-After: 1 was honoured before the next request went out.
    assert rx.arrivals[2].at - rx.arrivals[1].at >= 0.95
    assert all(a.headers["Authorization"] == "Bearer t0k" for a in rx.arrivals)
    # A retry carries the same key as the failed attempt.
    assert rx.arrivals[1].key == rx.arrivals[2].key == rx.arrivals[3].key


def test_record_fields_match_the_aggregate(db_path: Path, serve: Callable[..., Receiver]) -> None:
    rx = serve(lambda n: OK)
    assert FeedRunner(db_path, fast(rx)).run_once().ok
    rec = next(r for r in rx.records() if r["camera_id"] == "entrance" and r["in_count"] > 0)
    # the schema's demographics have no nulls: the feed's (suppressed) are checked below
    agg = WindowAggregate.from_dict({**rec["aggregate"], "demographics": {}})
    assert rec["message_id"] == agg.message_id
    assert rec["window_start"] == _iso(agg.window_start)
    assert rec["window_end"] == _iso(agg.window_end)
    assert rec["simulated"] is True
    assert rec["in_count"] == sum(x.in_count for x in agg.lines)
    assert rec["out_count"] == sum(x.out_count for x in agg.lines)
    assert rec["lines"] == [x.to_dict() for x in agg.lines]
    assert (rec["occupancy_avg"], rec["occupancy_max"]) == (agg.occupancy.avg, agg.occupancy.max)
    assert rx.arrivals[0].key == f"platform:{rx.records()[0]['seq']}-{rx.records()[24]['seq']}"


def test_demographics_leave_k_anonymous_per_window(tmp_path: Path,
                                                  serve: Callable[..., Receiver]) -> None:
    """k = 5 at the feed's level, the window: cells of fewer than 5 people are null, and
    complements hide the smallest shown cell while the nulls add up to 1-4 people."""
    sid, t = DEMO_STORES[0].store_id, recent_day() + timedelta(hours=10)
    ages = {"<25": 7, "25-34": 3, "35-44": 20, "45-54": 0, "55-64": 6, "65+": 1, "unknown": 0}
    genders = {"female": 35, "male": 2, "unknown": 0}
    small = window(sid, t, camera_id="entrance", ins=37)
    small = msgspec.structs.replace(small, demographics=Demographics(age_bands=ages,
                                                                     genders=genders))
    big = msgspec.structs.replace(
        window(sid, t + timedelta(hours=1), camera_id="entrance", ins=55),
        demographics=Demographics(genders={"female": 30, "male": 25}))
    none = window(sid, t + timedelta(hours=2), camera_id="entrance", ins=0, outs=0)
    path = tmp_path / "gateway.db"
    store_windows(path, [small, big, none])
    rx = serve(lambda n: OK)
    out = tmp_path / "lake"
    assert FeedRunner(path, fast(rx, export_dir=out)).run_once().ok
    pushed = {r["message_id"]: r["aggregate"] for r in rx.records()}
    exported = {r["message_id"]: json.loads(r["aggregate_json"])
                for f in part_files(out, "parquet") for r in read_parquet(f)}
    for sent in (pushed, exported):
        demo = sent[small.message_id]["demographics"]
        # 25-34, 45-54, 65+ and unknown are under 5 (4 people together): 55-64 (6) joins them
        assert demo["age_bands"] == {"<25": 7, "25-34": None, "35-44": 20, "45-54": None,
                                     "55-64": None, "65+": None, "unknown": None}
        # male + unknown = 2 people, the total being known from the ages: female hides too
        assert demo["genders"] == {"female": None, "male": None, "unknown": None}
        assert demo["min_cell"] == 5 and "age_bands.55-64" in demo["suppressed"]
        assert sent[big.message_id]["demographics"]["genders"] == {"female": 30, "male": 25}
        assert sent[big.message_id]["demographics"]["suppressed"] == []
    rows = {r["message_id"]: r for r in stored(path)}
    # a window without demographic counts leaves unchanged
    assert json.dumps(pushed[none.message_id]) == json.dumps(json.loads(rows[none.message_id][
        "payload"]))
    for f in part_files(out, "parquet"):
        for r in read_parquet(f):
            check_payload(r, rows[r["message_id"]])


def test_restart_resends_the_pending_batch_with_the_same_key_and_loses_nothing(
    db_path: Path, serve: Callable[..., Receiver], later_windows: list[WindowAggregate]
) -> None:
    rx = serve(lambda n: E503 if n > 3 else OK)
    first = FeedRunner(db_path, fast(rx, max_retries=2)).run_once()

    assert not first.ok and not first.push_permanent
    assert "after 3 attempts" in str(first.push_error) and "503" in str(first.push_error)
    rows = stored(db_path)
    seq, pending = cursor(db_path)
    assert first.pushed_batches == 3 and seq == rows[74]["seq"]
    assert pending == (rows[75]["seq"], rows[99]["seq"])
    failed_key = rx.arrivals[-1].key

    # New windows arrive meanwhile, and the restarted feed has a different batch size: the
    # pending batch must still go out unchanged, so the receiver can dedupe it.
    store_windows(db_path, later_windows)
    rx.plan = lambda n: OK
    sent_before = len(rx.arrivals)
    second = FeedRunner(db_path, fast(rx, batch_size=40)).run_once()

    assert second.ok, second
    assert rx.arrivals[sent_before].key == failed_key
    assert len(rx.accepted[failed_key]) == 25
    assert_exactly_once_in_order(rx, db_path)
    assert cursor(db_path) == (stored(db_path)[-1]["seq"], None)


def test_gateway_killed_mid_request_resumes_from_the_durable_cursor(
    db_path: Path, serve: Callable[..., Receiver]
) -> None:
    """SIGKILL while batch 3 is in flight (already stored by the receiver, no answer yet)."""
    rx = serve(lambda n: HANG if n == 3 else OK)
    script = (
        "import sys; from gateway.feed import FeedConfig, FeedRunner; "
        "FeedRunner(sys.argv[1], FeedConfig(push_url=sys.argv[2], batch_size=25)).run_once()"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script, str(db_path), rx.url], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        assert wait_for(lambda: len(rx.arrivals) >= 3, timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        rx.release.set()
    rows = stored(db_path)
    hung_key = rx.arrivals[2].key
    assert cursor(db_path) == (rows[49]["seq"], (rows[50]["seq"], rows[74]["seq"]))

    sent_before = len(rx.arrivals)
    report = FeedRunner(db_path, fast(rx)).run_once()
    assert report.ok, report
    assert rx.arrivals[sent_before].key == hung_key
    assert rx.duplicates == 1
    assert_exactly_once_in_order(rx, db_path)


def test_gzip_bodies_arrive_intact(db_path: Path, serve: Callable[..., Receiver]) -> None:
    rx = serve(lambda n: OK)
    assert FeedRunner(db_path, fast(rx, push_gzip=True)).run_once().ok
    assert all(a.headers["Content-Encoding"] == "gzip" for a in rx.arrivals)
    assert_exactly_once_in_order(rx, db_path)


def test_cli_once_reads_the_feed_table_of_gateway_toml(
    db_path: Path, serve: Callable[..., Receiver], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rx = serve(lambda n: OK)
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'db = "{db_path}"\n[mqtt]\nhost = "broker"\n'
                    f'[feed]\npush_url = "{rx.url}"\nbatch_size = 100\n')
    assert main(["--once", "--db", str(db_path), "--config", str(toml)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pushed_records"] == len(stored(db_path)) and out["push_error"] is None
    assert_exactly_once_in_order(rx, db_path)
    toml.write_text('[feed]\npush_url = "http://x"\nbatch_sise = 100\n')
    with pytest.raises(ConfigError, match=r"feed\.batch_sise"):
        main(["--once", "--db", str(db_path), "--config", str(toml)])


def test_a_400_stops_the_feed_with_the_reason_and_keeps_the_cursor(
    db_path: Path, serve: Callable[..., Receiver]
) -> None:
    rx = serve(lambda n: E400 if n >= 2 else OK)
    runner = FeedRunner(db_path, fast(rx))
    report = runner.run_once()

    rows = stored(db_path)
    assert report.push_permanent
    assert "HTTP 400" in str(report.push_error)
    assert "store_id not allowed for this tenant" in str(report.push_error)
    assert cursor(db_path)[0] == rows[24]["seq"]
    assert report.backlog == len(rows) - 25
    assert len(rx.arrivals) == 2  # no retries of a request the receiver called wrong

    # The service loop stops pushing (rather than skipping the batch) and, with no export
    # configured, ends by itself; the same batch was tried again, not the next one.
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    thread.start()
    thread.join(timeout=15)
    stop.set()
    assert not thread.is_alive()
    assert runner.push_stopped is not None and "HTTP 400" in runner.push_stopped
    assert rx.arrivals[-1].key == rx.arrivals[1].key
    assert cursor(db_path)[0] == rows[24]["seq"]


def test_a_window_that_cannot_be_formatted_stops_the_push_and_is_not_skipped(
    db_path: Path, serve: Callable[..., Receiver]
) -> None:
    rows = stored(db_path)
    bad = rows[30]
    with sqlite3.connect(db_path) as conn:  # damage one stored payload on disk
        conn.execute("UPDATE windows SET payload = '{\"lines\": 7' WHERE seq = ?", [bad["seq"]])
    rx = serve(lambda n: OK)
    report = FeedRunner(db_path, fast(rx)).run_once()
    assert report.push_permanent
    assert f"seq {bad['seq']} ({bad['message_id']})" in str(report.push_error)
    assert cursor(db_path)[0] == rows[24]["seq"]
    assert len(rx.records()) == 25


def test_export_goes_on_while_the_push_is_stopped(
    db_path: Path, serve: Callable[..., Receiver], tmp_path: Path,
    later_windows: list[WindowAggregate],
) -> None:
    rx = serve(lambda n: E400)
    out = tmp_path / "lake"
    runner = FeedRunner(db_path, fast(rx, interval_s=0.05, export_dir=out,
                                      export_interval_s=0.05))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    thread.start()

    def exported() -> int:
        return sum(len(read_parquet(f)) for f in part_files(out, "parquet"))

    try:
        assert wait_for(lambda: runner.push_stopped is not None)
        assert wait_for(lambda: exported() == len(stored(db_path)))
        store_windows(db_path, later_windows)
        assert wait_for(lambda: exported() == len(stored(db_path)))
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(rx.arrivals) == 1  # the stopped push did not try again meanwhile
    assert cursor(db_path) == (0, (stored(db_path)[0]["seq"], stored(db_path)[24]["seq"]))
    check_partitions(out, "parquet", read_parquet, db_path)


def test_run_forever_pushes_new_windows_and_stops_on_request(
    db_path: Path, serve: Callable[..., Receiver], later_windows: list[WindowAggregate]
) -> None:
    rx = serve(lambda n: OK)
    runner = FeedRunner(db_path, fast(rx, batch_size=200, interval_s=0.05))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        first = len(stored(db_path))
        assert wait_for(lambda: len(rx.records()) == first)
        store_windows(db_path, later_windows)
        total = len(stored(db_path))
        assert total > first
        assert wait_for(lambda: len(rx.records()) == total)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert_exactly_once_in_order(rx, db_path)


def test_config_rejects_unknown_keys_and_inverted_backoff() -> None:
    with pytest.raises(ValidationError, match="push_ulr"):
        FeedConfig.model_validate({"push_ulr": "http://x"})
    with pytest.raises(ValidationError, match="backoff_max_s"):
        FeedConfig(backoff_initial_s=5.0, backoff_max_s=1.0)
    with pytest.raises(ValidationError, match="push_url"):
        FeedConfig(push_url="ftp://x")


# --------------------------------------------------------------------------- export


def export_config(out: Path, fmt: str = "parquet", **kw: Any) -> FeedConfig:
    return FeedConfig.model_validate({"export_dir": out, "export_format": fmt, **kw})


def part_files(out: Path, ext: str) -> list[Path]:
    return sorted(out.glob(f"windows/dt=*/part-*.{ext}"))


def check_partitions(out: Path, ext: str, rows_of: Callable[[Path], list[dict[str, Any]]],
                     db_path: Path) -> None:
    """Every stored window in exactly one file, in the dt of its UTC start, nothing else."""
    want = {r["message_id"]: r for r in stored(db_path)}
    seen: list[str] = []
    for f in part_files(out, ext):
        recs = rows_of(f)
        seqs = [r["seq"] for r in recs]
        assert f.name == f"part-{seqs[0]:012d}-{seqs[-1]:012d}.{ext}"
        assert seqs == sorted(seqs)
        for r in recs:
            row = want[r["message_id"]]
            assert f.parent.name == f"dt={row['window_start'][:10]}"
            assert r["seq"] == row["seq"]
            assert r["store_id"] == row["store_id"] and r["camera_id"] == row["camera_id"]
            seen.append(r["message_id"])
            check_payload(r, row)
    assert sorted(seen) == sorted(want)
    assert not list(out.rglob("*.tmp"))


def check_payload(rec: dict[str, Any], row: dict[str, Any]) -> None:
    if "aggregate_json" in rec:  # parquet: timestamps typed, the aggregate as text
        sent = json.loads(rec["aggregate_json"])
        assert _iso(rec["window_start"]) == row["window_start"]
        assert _iso(rec["window_end"]) == row["window_end"]
    else:
        sent = rec["aggregate"]
        assert rec["window_start"] == row["window_start"]
    agg = json.loads(row["payload"])
    check_k_anonymous(sent, agg)
    assert rec["in_count"] == sum(x["in_count"] for x in agg["lines"])
    assert rec["occupancy_max"] == agg["occupancy"]["max"]


K = 5


def check_k_anonymous(sent: dict[str, Any], stored_agg: dict[str, Any]) -> None:
    """What left is the stored aggregate except demographics, whose cells are the stored
    counts when 5 or more and null otherwise; the nulls of a dimension hide 0 or at least 5
    people together (a total minus the shown cells cannot single out fewer)."""
    assert {k: v for k, v in sent.items() if k != "demographics"} == {
        k: v for k, v in stored_agg.items() if k != "demographics"}
    demo = stored_agg.get("demographics") or {}
    if not any(demo.get(d) for d in ("age_bands", "genders")):
        assert sent.get("demographics") == stored_agg.get("demographics")
        return
    out = sent["demographics"]
    assert out["min_cell"] == K
    for dim in ("age_bands", "genders"):
        cells, counts = out[dim], demo.get(dim, {})
        assert set(cells) == set(counts)
        for key, n in counts.items():
            assert cells[key] in (None, n)
            if n < K:
                assert cells[key] is None, (dim, key, n)
        hidden = sum(n for key, n in counts.items() if cells[key] is None)
        assert hidden == 0 or hidden >= K, (dim, counts, cells)
        assert {f"{dim}.{k}" for k, v in cells.items() if v is None} <= set(out["suppressed"])


def read_parquet(f: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(f).to_pylist()
    return rows


def read_jsonl(f: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]


def test_parquet_export_writes_dt_partitions_once(
    db_path: Path, tmp_path: Path, later_windows: list[WindowAggregate]
) -> None:
    out = tmp_path / "lake"
    runner = FeedRunner(db_path, export_config(out, export_batch_size=100))
    report = runner.run_once()

    assert report.ok, report
    assert report.exported_records == len(stored(db_path))
    dts = {f.parent.name for f in part_files(out, "parquet")}
    assert len(dts) >= 2
    check_partitions(out, "parquet", read_parquet, db_path)
    # A lake engine reads it as one hive-partitioned dataset.
    table = ds.dataset(out / "windows", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(stored(db_path))
    assert set(table.column("dt").to_pylist()) == {d.removeprefix("dt=") for d in dts}

    before = {f: f.stat().st_mtime_ns for f in part_files(out, "parquet")}
    again = runner.run_once()
    assert again.exported_records == 0 and again.export_files == []
    assert {f: f.stat().st_mtime_ns for f in part_files(out, "parquet")} == before

    store_windows(db_path, later_windows)
    third = runner.run_once()
    assert third.exported_records == len(later_windows)
    check_partitions(out, "parquet", read_parquet, db_path)


def test_jsonl_export_has_the_push_record_shape(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    report = FeedRunner(db_path, export_config(out, "jsonl")).run_once()
    assert report.ok, report
    check_partitions(out, "jsonl", read_jsonl, db_path)
    assert FeedRunner(db_path, export_config(out, "jsonl")).run_once().exported_records == 0


def test_export_interrupted_midway_redoes_the_same_files_without_duplicates(
    db_path: Path, tmp_path: Path, later_windows: list[WindowAggregate]
) -> None:
    out = tmp_path / "lake"
    last_dt = f"dt={stored(db_path)[-1]['window_start'][:10]}"
    # A plain file where the last partition's directory must go: a real failure, after the
    # first partition's file of the same batch has already been renamed into place.
    (out / "windows").mkdir(parents=True)
    (out / "windows" / last_dt).write_text("in the way")

    failed = FeedRunner(db_path, export_config(out)).run_once()
    assert failed.export_error is not None and last_dt in failed.export_error
    seq, pending = cursor(db_path, "export:parquet")
    assert seq == 0 and pending is not None
    written = part_files(out, "parquet")
    assert written  # the partial batch left its earlier partitions behind

    (out / "windows" / last_dt).unlink()
    store_windows(db_path, later_windows)  # must not change the redone batch's files
    report = FeedRunner(db_path, export_config(out)).run_once()
    assert report.ok, report
    assert set(written) <= set(part_files(out, "parquet"))
    check_partitions(out, "parquet", read_parquet, db_path)


def test_feed_reads_a_database_the_gateway_writes_concurrently(
    db_path: Path, serve: Callable[..., Receiver], later_windows: list[WindowAggregate]
) -> None:
    """Cursor commits wait for the ingest writer's lock instead of failing."""
    rx = serve(lambda n: OK)
    writer = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # the ingest side holds the write lock for a moment
    release = threading.Timer(0.5, writer.commit)
    release.start()
    try:
        report = FeedRunner(db_path, fast(rx)).run_once()
    finally:
        release.join()
        writer.close()
    assert report.ok, report
    assert_exactly_once_in_order(rx, db_path)
