"""End-to-end confirmation: a window leaves the edge's outbox only once the gateway confirms
it committed it, so a broker crash after its PUBACK loses nothing (deploy/mosquitto's own
config, the gateway as a real process, real SQLite files)."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

from edge.node.clock import disagreement
from edge.node.config import EdgeConfig
from edge.node.service import EdgeNode
from gateway import heat_cells
from gateway.storage import Storage
from storesense.schema import Heatmap
from storesense.topics import Topics
from tests.edge_node.deploy_broker import DeployedMosquitto, make_auth, recent_day
from tests.edge_node.helpers import NoAnalytics, NoFrames
from tests.gateway.helpers import store, window
from tests.gateway.mqtt_helpers import count, start_gateway, stop
from tests.waiting import wait_until

TOPICS = Topics()
T0 = recent_day()  # the gateway runs on the real clock and refuses implausible times
N = 300






def _node(tmp_path: Path, broker: DeployedMosquitto, password: str,
          wall_clock: Any = time.time, heatmap_packed: bool = False) -> EdgeNode:
    cfg = EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "status_interval_s": 1.0, "demographics": False,
        "broker": {"host": broker.host, "port": broker.port, "username": "edge1@s1",
                   "password": password, "keepalive_s": 5, "reconnect_min_s": 0.5,
                   "reconnect_max_s": 1.0},
        "outbox": {"replay_rate": 0, "confirm_timeout_s": 3, "heatmap_packed": heatmap_packed},
        "cameras": [{"camera_id": "door", "source": "unused.mp4"}],
    })
    return EdgeNode(cfg, lambda cam: NoFrames(), lambda cam, analytics: NoAnalytics(),
                    wall_clock=wall_clock)


def _gateway(tmp_path: Path, broker: DeployedMosquitto, password: str) -> Path:
    storage = Storage(tmp_path / "gateway.db")
    storage.upsert_stores([store("s1")])
    storage.close()
    path = tmp_path / "gateway.toml"
    path.write_text(f'db = "{tmp_path / "gateway.db"}"\n[mqtt]\nhost = "{broker.host}"\n'
                    f'port = {broker.port}\nusername = "gateway"\npassword = "{password}"\n')
    return path


def _unsent(outbox: Path) -> int:
    """Rows the broker has not acknowledged yet (all rows, for an outbox without the flag)."""
    db = sqlite3.connect(outbox)
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(outbox)")]
        where = " WHERE sent = 0" if "sent" in cols else ""
        return int(db.execute(f"SELECT count(*) FROM outbox{where}").fetchone()[0])
    finally:
        db.close()


def _stored(tmp_path: Path) -> int:
    return count(tmp_path / "gateway.db", "SELECT count(*) FROM windows")


def test_windows_the_broker_acknowledged_and_lost_in_a_crash_are_sent_again(
    tmp_path: Path,
) -> None:
    """The gateway is down; the edge publishes N windows and the broker acknowledges them
    all; the broker is killed (-9) before its next save. Broker and gateway come back:
    the edge sends again what was never confirmed, and the gateway stores all N."""
    creds = make_auth(tmp_path, "store_id,device_id,cameras\ns1,edge1,door\n")
    with DeployedMosquitto(tmp_path) as broker:
        config = _gateway(tmp_path, broker, creds["gateway"])
        log = tmp_path / "gateway.log"
        gw = start_gateway(config, log)
        wait_until(lambda: "subscribed" in log.read_text(), 60, "the gateway's session")
        stop(gw)  # down: its persistent session queues on the broker
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGUSR1)  # a save: the session is on disk
        node = _node(tmp_path, broker, creds["edge1@s1"])
        for i in range(N):
            w = window("s1", T0 + timedelta(minutes=i), "door")
            node.outbox.put(TOPICS.aggregate("s1", "door"), w)
        outbox = node.outbox.path
        stop_node = threading.Event()
        run = threading.Thread(target=node.run, args=(stop_node,))
        run.start()
        try:
            wait_until(lambda: node.publisher.published >= N and _unsent(outbox) == 0, 60,
                       "the broker to acknowledge every window")
            broker.kill()
            broker.start()
            gw = start_gateway(config, log)
            wait_until(lambda: _stored(tmp_path) >= N, 90, f"{N} windows stored")
            wait_until(lambda: node.outbox.stats().depth == 0, 30, "confirmations")
            assert _stored(tmp_path) == N
            assert node.publisher.resent >= 1
        finally:
            stop_node.set()
            run.join(20)
            stop(gw)
        assert not run.is_alive()


def test_packed_heatmaps_reach_the_gateway_cell_for_cell(tmp_path: Path) -> None:
    """An edge set to send heatmaps packed: the real gateway stores the windows as they were
    sent (packed) and sums their cells into the day's grid exactly as the plain form's."""
    creds = make_auth(tmp_path, "store_id,device_id,cameras\ns1,edge1,door\n")
    grids = [[round(0.001 * ((i + 1) * 37 + c * 13) % 7.5, 3) for c in range(32 * 18)]
             for i in range(3)]
    with DeployedMosquitto(tmp_path) as broker:
        config = _gateway(tmp_path, broker, creds["gateway"])
        log = tmp_path / "gateway.log"
        gw = start_gateway(config, log)
        node = _node(tmp_path, broker, creds["edge1@s1"], heatmap_packed=True)
        for i, cells in enumerate(grids):
            w = window("s1", T0 + timedelta(minutes=i), "door")
            node._sink(msgspec.structs.replace(w, heatmap=Heatmap(cols=32, rows=18, cells=cells)))
        stop_node = threading.Event()
        run = threading.Thread(target=node.run, args=(stop_node,))
        run.start()
        try:
            wait_until(lambda: _stored(tmp_path) >= len(grids), 60, "the windows stored")
        finally:
            stop_node.set()
            run.join(20)
            stop(gw)
    db = sqlite3.connect(tmp_path / "gateway.db")
    try:
        payloads = [r[0] for r in db.execute("SELECT payload FROM windows")]
        (cols, rows, stored), = db.execute("SELECT cols, rows, cells FROM heatmap_day").fetchall()
    finally:
        db.close()
    assert all('"heatmap_packed"' in p and '"heatmap":null' in p.replace(" ", "")
               for p in payloads), payloads[0][:300]
    assert (cols, rows) == (32, 18)
    want = [round(sum(col), 3) for col in zip(*grids, strict=True)]
    assert [round(c, 3) for c in heat_cells.decode(stored, cols, rows)] == want


def _recorder(box: list[bytes]) -> Any:
    return lambda client, userdata, msg: box.append(msg.payload)


def test_a_device_reads_only_its_own_cameras_confirmations(tmp_path: Path) -> None:
    """make_auth.py's ACL: the gateway may write every ack topic, a device read only its own
    cameras' (another store's device gets nothing)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    creds = make_auth(tmp_path, "store_id,device_id,cameras\ns1,edge1,door\ns2,edge1,\n")
    got: dict[str, list[bytes]] = {"edge1@s1": [], "edge1@s2": []}
    clients = []
    with DeployedMosquitto(tmp_path) as broker:
        for user in (*got, "gateway"):
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
            c.username_pw_set(user, creds[user])
            subscribed = threading.Event()
            c.on_subscribe = lambda *a, ev=subscribed: ev.set()
            c.on_message = _recorder(got.setdefault(user, []))
            c.connect(broker.host, broker.port)
            c.loop_start()
            if user != "gateway":
                c.subscribe(TOPICS.ack("s1", "door"), qos=1)
                assert subscribed.wait(10)
            clients.append(c)
        try:
            info = clients[-1].publish(TOPICS.ack("s1", "door"), b'{"confirmed":[]}', qos=1)
            info.wait_for_publish(10)
            wait_until(lambda: got["edge1@s1"] == [b'{"confirmed":[]}'], 10, "s1's device")
            assert got["edge1@s2"] == []
        finally:
            for c in clients:
                c.disconnect()
                c.loop_stop()


def test_a_device_clock_an_hour_ahead_learns_it_from_the_confirmations(tmp_path: Path) -> None:
    """No step to see: the clock was wrong from the start. The gateway's clock comes with
    every confirmation, and the node says how far off its own is."""
    creds = make_auth(tmp_path, "store_id,device_id,cameras\ns1,edge1,door\n")
    with DeployedMosquitto(tmp_path) as broker:
        config = _gateway(tmp_path, broker, creds["gateway"])
        log = tmp_path / "gateway.log"
        gw = start_gateway(config, log)
        node = _node(tmp_path, broker, creds["edge1@s1"], wall_clock=lambda: time.time() + 3600)
        node.outbox.put(TOPICS.aggregate("s1", "door"), window("s1", T0, "door"))
        stop_node = threading.Event()
        run = threading.Thread(target=node.run, args=(stop_node,))
        run.start()
        try:
            wait_until(lambda: node.outbox.stats().depth == 0, 60, "the confirmation")
        finally:
            stop_node.set()
            run.join(20)
            stop(gw)
    offset = node.clock.gateway_offset_s
    assert offset is not None and abs(offset - 3600) < 60
    assert disagreement(offset) == f"device clock {offset:.0f} s ahead of the gateway's"
    assert disagreement(time.time() - time.time()) is None
