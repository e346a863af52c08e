"""`storesense demo` end to end, as the README runs it: its own Mosquitto, the gateway with the
API, one edge node running the real pipeline on a real video and simulated cameras for the
rest; SIGINT (Ctrl-C) must stop every process it started. The real pipeline is run as a
fresh clone has it: no ../shared, an empty models directory, only what the package ships."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from storesense.broker import free_port
from storesense.demo import bundled_clip


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def _wait_line(q: queue.Queue[str], startswith: str, timeout: float, seen: list[str]) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if line.strip().startswith(startswith):
            return line
    raise AssertionError(f"no line starting {startswith!r} in {timeout}s; got:\n{''.join(seen)}")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            found.append(f"{pid}: {cmd}")
    return found


def _live_windows(db: Path, since: str) -> list[Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT store_id, camera_id, simulated, COUNT(*) FROM windows "
            "WHERE received_at >= ? GROUP BY 1, 2, 3", (since,)).fetchall()


def _interruptible() -> None:
    """Ctrl-C reaches the demo as it would from a terminal: a test run started in the
    background by a non-interactive shell (``cmd &``) ignores SIGINT, and the demo would
    inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_runs_real_and_simulated_cameras_then_ctrl_c_stops_everything(
    tmp_path: Path
) -> None:
    workdir, port = tmp_path / "demo", free_port()
    (tmp_path / "models").mkdir()
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    proc = subprocess.Popen(
        [sys.executable, "-m", "storesense.cli", "demo", "--workdir", str(workdir),
         "--port", str(port), "--weeks", "1", "--window-s", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "STORESENSE_MODELS_DIR": str(tmp_path / "models"),
             "STORESENSE_DEMO_EVAL": str(tmp_path / "no-eval"), "PYTHONUNBUFFERED": "1"},
        preexec_fn=_interruptible,
    )
    seen: list[str] = []
    try:
        q = _lines(proc)
        assert "mosquitto" in _wait_line(q, "broker:", 60, seen)
        line = _wait_line(q, "edge node sh-001/entrance: real pipeline", 60, seen)
        assert str(bundled_clip()) in line and "yolox_nano" in line
        _wait_line(q, "dashboards:", 120, seen)
        token = _wait_line(q, "sign in as HQ", 10, seen).split()[-1]
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                           headers={"Authorization": f"Bearer {token}"})

        deadline, rows, cams = time.monotonic() + 150, [], []
        while time.monotonic() < deadline:
            rows = _live_windows(workdir / "gateway.db", started)
            devices = api.get("/devices", params={"store_id": "sh-001"}).json()
            cams = [c for d in devices if d["device_id"] == "edge-sh-001" and d["online"]
                    for c in d["cameras"] if c["state"] == "ok" and (c["fps"] or 0) > 0]
            if cams and any(r[:3] == ("sh-001", "entrance", 0) for r in rows):
                break
            time.sleep(2)
        assert cams, f"edge-sh-001 never reported a running camera; output:\n{''.join(seen)}"
        assert ("sh-001", "entrance", 0) in [r[:3] for r in rows], rows
        simulated = {(r[0], r[1]) for r in rows if r[2] == 1}
        assert ("sh-001", "floor") in simulated and ("tk-004", "entrance") in simulated, rows
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    time.sleep(0.5)  # let the reader thread take the last lines
    out = "".join(seen + list(q.queue))
    assert proc.returncode == 0, out
    assert "demo stopped" in out
    assert _processes_mentioning(str(workdir)) == []
    # the last line: what the gateway stored while the demo ran, counted from its database
    summary = json.loads(out.strip().splitlines()[-1])
    stored = _live_windows(workdir / "gateway.db", summary["counted_since"])
    assert summary["real_video_windows"] == sum(r[3] for r in stored if r[2] == 0) > 0
    assert summary["simulated_windows"] == sum(r[3] for r in stored if r[2] == 1) > 0
    assert summary["real_video_sources"] == [str(bundled_clip())]


def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    """What systemd, docker stop and kill send: the demo ends its broker, gateway and
    simulators as Ctrl-C does, and the port is free again."""
    workdir, port = tmp_path / "demo", free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "storesense.cli", "demo", "--workdir", str(workdir),
         "--port", str(port), "--weeks", "1", "--window-s", "10", "--no-video"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen: list[str] = []
    try:
        q = _lines(proc)
        _wait_line(q, "dashboards:", 120, seen)
        assert _processes_mentioning(str(workdir)), "the demo started no process of its own"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    time.sleep(0.5)
    assert "demo stopped" in "".join(seen + list(q.queue))
    assert _processes_mentioning(str(workdir)) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens on the port
