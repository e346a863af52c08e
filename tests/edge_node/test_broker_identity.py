"""Device identity at the broker, with deploy/mosquitto's own mosquitto.conf, make_auth.py's
users and ACL, and the gateway as a real process writing a real SQLite file."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.storage import Storage
from storesense.topics import Topics
from tests.edge_node.deploy_broker import DEPLOY, DeployedMosquitto, make_auth, recent_day
from tests.gateway.helpers import store, window
from tests.gateway.mqtt_helpers import count, start_gateway, stop
from tests.waiting import wait_until

TOPICS = Topics()
GATEWAY_CLIENT_ID = "storesense-gateway"  # deploy/gateway.example.toml
T0 = recent_day()  # the gateway runs on the real clock and refuses implausible times


def _login(broker: DeployedMosquitto, user: str, password: str, *, client_id: str | None = None,
           keep_session: bool = False) -> mqtt.Client:
    """An MQTT 5 client logged in as ``user``; ``keep_session``: clean_start false and a
    session that outlives the connection, as the gateway's."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or user,
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if keep_session:
        props.SessionExpiryInterval = 3600
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: connected.set() if not rc.is_failure else None
    c.connect(broker.host, broker.port, 10, clean_start=not keep_session, properties=props)
    c.loop_start()
    assert connected.wait(10), f"{user} could not log in"
    return c


def _close(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


def _publish(c: mqtt.Client, store_id: str, camera: str, first: int, n: int) -> list[str]:
    """n windows at QoS 1, each acknowledged by the broker with a success code."""
    ws = [window(store_id, T0 + timedelta(minutes=i), camera) for i in range(first, first + n)]
    infos = [c.publish(TOPICS.aggregate(store_id, camera), w.to_json(), qos=1) for w in ws]
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published() and info.rc == mqtt.MQTT_ERR_SUCCESS
    return [w.message_id for w in ws]


def _gateway_config(tmp_path: Path, broker: DeployedMosquitto, password: str,
                    workers: int) -> Path:
    lines = [f'db = "{tmp_path / "gateway.db"}"', "[mqtt]", f'host = "{broker.host}"',
             f"port = {broker.port}", f'client_id = "{GATEWAY_CLIENT_ID}"',
             'username = "gateway"', f'password = "{password}"']
    if workers > 1:
        lines.append('shared_group = "ingest"')
    lines += ["[ingest]", f"workers = {workers}"]
    storage = Storage(tmp_path / "gateway.db")  # the stores must be registered
    storage.upsert_stores([store(s) for s in ("s1", "s2")])
    storage.close()
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _stored(tmp_path: Path) -> int:
    return count(tmp_path / "gateway.db", "SELECT count(*) FROM windows")


def _wait_connected(broker: DeployedMosquitto, workers: int) -> None:
    """Until every ingest process of the gateway has connected (workers start slowly)."""
    users = ["gateway"] + [f"gateway-{i}" for i in range(1, workers)]
    wait_until(lambda: all(f"u'{u}')" in broker.log_path.read_text() for u in users), 60,
               f"{users} to connect")


def _first_window_stored(owner: mqtt.Client, tmp_path: Path) -> None:
    """Window 0 again (same message id) until the gateway, once subscribed, has stored it."""
    def stored() -> bool:
        _publish(owner, "s1", "door", 0, 1)
        deadline = time.monotonic() + 0.5
        while _stored(tmp_path) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        return _stored(tmp_path) == 1

    wait_until(stored, 60, "the gateway to store its first window")


DEVICES = "store_id,device_id,cameras\ns1,edge1,door\ns2,edge1,\n"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_device_login_cannot_take_over_the_gateways_session(
    tmp_path: Path, workers: int,
) -> None:
    """Store s2's device connects with the gateway's client id and clean_start=false while
    the gateway is down. Before deploy/mosquitto bound client ids to user names, the broker
    handed it the gateway's session: the windows queued for the gateway went to the device,
    whose ACL discarded them. Now the gateway gets every window of s1."""
    creds = make_auth(tmp_path, DEVICES, "--gateway-workers", str(workers))
    with DeployedMosquitto(tmp_path) as broker:
        config = _gateway_config(tmp_path, broker, creds["gateway"], workers)
        log = tmp_path / "gateway.log"
        owner = _login(broker, "edge1@s1", creds["edge1@s1"])
        gw = start_gateway(config, log)
        try:
            _first_window_stored(owner, tmp_path)
            _wait_connected(broker, workers)
            stop(gw)  # its persistent session(s) now queue on the broker
            ids = [GATEWAY_CLIENT_ID, "gateway"] + [
                f"{GATEWAY_CLIENT_ID}-w{i}" for i in range(workers)]
            thieves = [_login(broker, "edge1@s2", creds["edge1@s2"], client_id=cid,
                              keep_session=True) for cid in ids]
            sent = 1 + len(_publish(owner, "s1", "door", 1, 200))
            for t in thieves:
                _close(t)
            gw = start_gateway(config, log)
            wait_until(lambda: _stored(tmp_path) >= sent, 60, f"{sent} windows stored")
            assert _stored(tmp_path) == sent
        finally:
            stop(gw)
            _close(owner)
        # each ingest process kept its own connection: none took over another's
        taken = re.findall(r"Client (gateway\S*) already connected", broker.log_path.read_text())
        assert taken == []


def test_ids_that_once_made_the_same_user_are_two_users_confined_to_their_stores(
    tmp_path: Path,
) -> None:
    """Store ``a.b`` device ``c`` and store ``a`` device ``b.c`` were both user ``a.b.c``
    (one password for both, the last row's ACL). Now each logs in with its own password and
    may publish only under its own store."""
    creds = make_auth(tmp_path, "store_id,device_id,cameras\na.b,c,\na,b.c,\n")
    users = {("a.b", "c"): "c@a.b", ("a", "b.c"): "b.c@a"}
    assert set(users.values()) <= set(creds) and creds["c@a.b"] != creds["b.c@a"]
    with DeployedMosquitto(tmp_path) as broker:
        gateway = _login(broker, "gateway", creds["gateway"])
        got: list[str] = []
        gateway.on_message = lambda cl, u, m: got.append(m.topic)
        gateway.subscribe(TOPICS.all_aggregates(), qos=1)
        try:
            for (store_id, _), user in users.items():
                other = "a" if store_id == "a.b" else "a.b"
                c = _login(broker, user, creds[user])
                assert _refused(c, TOPICS.aggregate(other, "door")), f"{user} wrote {other}"
                c = _login(broker, user, creds[user])  # the refusal closed the connection
                _publish(c, store_id, "door", 0, 1)
                _close(c)
            wait_until(lambda: len(got) == 2, 10, "both devices' own windows")
            assert sorted(got) == sorted(TOPICS.aggregate(s, "door") for s in ("a", "a.b"))
        finally:
            _close(gateway)


def _refused(c: mqtt.Client, topic: str) -> bool:
    """Publish at QoS 1 and report whether the broker refused it (MQTT 5 PUBACK >= 128)."""
    refused = threading.Event()
    c.on_publish = lambda cl, u, mid, rc, p: refused.set() if rc.is_failure else None
    c.publish(topic, b"{}", qos=1)
    return refused.wait(10)


def test_make_auth_refuses_a_device_listed_twice(tmp_path: Path) -> None:
    (tmp_path / "devices.csv").write_text("store_id,device_id\ns1,e1\ns1,e1\n")
    r = subprocess.run([sys.executable, str(DEPLOY / "make_auth.py"),
                        str(tmp_path / "devices.csv"), str(tmp_path / "auth")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "e1@s1" in r.stderr
