"""The installer's page on a running edge node (real pipeline on real video, real Mosquitto,
real Chromium): draw a line with the mouse, save, and see the node count on it, HQ told the
configuration, and no picture ever on MQTT."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from edge.node.config import EdgeConfig
from edge.node.installer import hash_password
from edge.node.service import EdgeNode, real_parts
from storesense.errors import ConfigError
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, NodeThread
from tests.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.video, pytest.mark.browser]
TOPICS = Topics()
USER, PASSWORD = "installer", "a long store password"
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG"


class Node(NodeThread):
    """EdgeNode.run in a thread, with the installer page on a free port."""

    def __init__(self, tmp: Path, broker: Mosquitto, models_dir: Path, video: Path,
                 tls: dict[str, str] | None = None) -> None:
        secret = tmp / "installer.hash"
        secret.write_text(hash_password(PASSWORD) + "\n")
        cfg = EdgeConfig.model_validate({
            "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp / "state"),
            "models_dir": str(models_dir), "status_interval_s": 0.5, "demographics": False,
            "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                       "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
            "outbox": {"confirm": False},
            "detector": {"model": "yolox_nano"},
            "installer": {"host": "127.0.0.1", "port": 0, "username": USER,
                          "password_hash_file": str(secret), **(tls or {})},
            "cameras": [{"camera_id": "door", "source": str(video), "loop": True,
                         "analytics": {"window_s": 10, "identity": {"reid": False}}}],
        })
        node = EdgeNode(cfg, *real_parts(cfg))
        assert node.installer is not None
        self.url = f"http://127.0.0.1:{node.installer.port}"
        super().__init__(node)


@pytest.fixture
def node(tmp_path: Path, broker: Mosquitto, models_dir: Path, eval_dir: Path) -> Iterator[Node]:
    n = Node(tmp_path, broker, models_dir, eval_dir / "PETS09-S2L1" / "video.mp4")
    yield n
    n.close()


def _get(url: str, auth: tuple[str, str] | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _windows(everything: Collector) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in list(everything.messages) if t.endswith("/agg")]


def test_draw_a_line_save_and_the_node_counts_on_it(
    node: Node, broker: Mosquitto, browser: Browser,
) -> None:
    everything = Collector(broker, "#", client_id="everything")
    try:
        _draw_save_and_check(node, everything, browser, broker)
        # Never a picture on MQTT: every message on every topic is small JSON.
        assert everything.messages
        for topic, payload in list(everything.messages):
            assert not payload.startswith((JPEG, PNG)), topic
            assert len(payload) < 64 * 1024, (topic, len(payload))
            if payload:
                json.loads(payload)
    finally:
        everything.close()


def _draw_save_and_check(node: Node, everything: Collector, browser: Browser,
                         broker: Mosquitto) -> None:
    ctx = browser.new_context(viewport={"width": 1000, "height": 1100},
                              http_credentials={"username": USER, "password": PASSWORD})
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(node.url + "/")
        page.wait_for_selector("body[data-state=ready]", timeout=15_000)
        # the live picture arrives once the camera has decoded a frame
        page.wait_for_function("() => document.getElementById('snapshot').naturalWidth > 0",
                               timeout=30_000)
        box = page.locator("#overlay").bounding_box()
        assert box is not None
        y = box["y"] + 0.5 * box["height"]
        page.mouse.move(box["x"] + 0.02 * box["width"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.5 * box["width"], y, steps=5)
        page.mouse.move(box["x"] + 0.98 * box["width"], y, steps=5)
        page.mouse.up()
        assert page.locator("#lines li").count() == 1
        page.click("#mode-zone")
        for fx, fy in ((0.1, 0.1), (0.4, 0.1), (0.4, 0.3), (0.1, 0.3)):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.click("#close-zone")
        page.select_option("#zones li select.kind", "display")
        page.click("#save")
        page.wait_for_selector("#status.ok", timeout=15_000)
        version = page.locator("#status").get_attribute("data-version")
        assert version is not None and version.startswith("installer-")

        # applied by the running camera, and reported in its status
        w = node.node.workers["door"]
        assert w.config_version == version
        line = w.applied.analytics.lines[0] if w.applied else None
        assert line is not None and line.name == "line1"
        assert line.points[1] == pytest.approx(0.5, abs=0.01)
        assert line.points[0] < 0.05 and line.points[2] > 0.95
        zone = w.applied.analytics.zones[0] if w.applied else None
        assert zone is not None and zone.kind == "display" and len(zone.polygon) == 4
        assert zone.polygon[0] == pytest.approx((0.1, 0.1), abs=0.01)

        def status_version() -> str | None:
            for t, p in reversed(list(everything.messages)):
                if t == TOPICS.status("s1", "edge1") and p:
                    cams = json.loads(p).get("cameras", [])
                    return next((c.get("config_version") for c in cams), None)
            return None

        wait_until(lambda: status_version() == version, 10, "the status to carry the version")
        # reported to HQ as configuration: the applied message, retained
        reported = [json.loads(p) for t, p in list(everything.messages)
                    if t == TOPICS.reported("s1", "door")]
        assert reported and reported[-1]["config_version"] == version
        assert reported[-1]["analytics"]["lines"][0]["name"] == "line1"
        retained = Collector(broker, TOPICS.reported("s1", "door"),
                             client_id="late-hq")
        try:
            wait_until(lambda: bool(retained.payloads()), 10, "the retained reported config")
            assert json.loads(retained.payloads()[0])["config_version"] == version
        finally:
            retained.close()
        # kept on disk, so a reboot runs it
        saved = json.loads((node.node.cfg.remote_config_dir / "door.json").read_text())
        assert saved["config_version"] == version

        # the windows published from now on count on the new line, and the page shows it
        def crossed() -> int:
            return sum(c["in_count"] + c["out_count"] for win in _windows(everything)
                       for c in win["lines"] if c["line"] == "line1")

        wait_until(lambda: crossed() > 0, 60, "a window counting crossings of line1")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.count')].some("
            "el => /[1-9]/.test(el.textContent))", timeout=30_000)
        assert not errors, errors
    finally:
        ctx.close()


def test_wrong_credentials_are_refused(node: Node, browser: Browser) -> None:
    assert _get(node.url + "/api/cameras", (USER, PASSWORD))[0] == 200
    for auth in (None, (USER, "wrong password"), ("admin", PASSWORD), ("", "")):
        status, body = _get(node.url + "/api/cameras", auth)
        assert status == 401, auth
        assert b"door" not in body
    assert _get(node.url + "/api/cameras/door/snapshot.jpg", (USER, "nope"))[0] == 401
    ctx = browser.new_context(http_credentials={"username": USER, "password": "guess"})
    try:
        response = ctx.new_page().goto(node.url + "/")
        assert response is not None and response.status == 401
    finally:
        ctx.close()


def test_a_burst_of_guesses_shuts_logins_for_a_minute(node: Node) -> None:
    """After 10 refused logins within a minute even the right password is refused, unchecked
    (no scrypt run per guess), until the minute has passed."""
    guesses = [threading.Thread(target=_get, args=(node.url + "/api/cameras", (USER, f"g{i}")))
               for i in range(10)]
    for t in guesses:
        t.start()
    for t in guesses:
        t.join(30)
    assert _get(node.url + "/api/cameras", (USER, PASSWORD))[0] == 401


def test_a_save_the_schema_refuses_changes_nothing(node: Node) -> None:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    bad = {"lines": [{"name": "x", "points": [0.1, 0.1, 0.1, 0.1]}], "zones": []}
    req = urllib.request.Request(node.url + "/api/cameras/door/config", method="PUT",
                                 data=json.dumps(bad).encode(),
                                 headers={"Authorization": f"Basic {token}",
                                          "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 422
    assert "points must be distinct" in e.value.read().decode()
    req = urllib.request.Request(node.url + "/api/cameras/door/config", method="PUT",
                                 data=b"{" * 70_000, headers={"Authorization": f"Basic {token}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 422
    assert node.node.workers["door"].config_version is None


def test_the_page_fits_a_phone_in_both_languages(node: Node, browser: Browser) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844},
                              http_credentials={"username": USER, "password": PASSWORD})
    try:
        page = ctx.new_page()
        page.goto(node.url + "/")
        page.wait_for_selector("body[data-state=ready]", timeout=15_000)
        wide = "() => document.documentElement.scrollWidth"
        assert page.evaluate(wide) <= 390
        assert page.locator("h1").inner_text() == "Camera set-up"
        page.click("#lang")
        assert page.locator("h1").inner_text() == "摄像头设置"
        assert page.locator("#save").inner_text() == "保存并应用"
        assert page.evaluate(wide) <= 390
    finally:
        ctx.close()


@pytest.mark.parametrize("content", [None, "hunter2\n", "scrypt$16384$8$1$zz$00\n"])
def test_a_missing_or_malformed_password_hash_fails_at_start(
    tmp_path: Path, broker: Mosquitto, models_dir: Path, content: str | None,
) -> None:
    secret = tmp_path / "installer.hash"
    if content is not None:
        secret.write_text(content)
    cfg = EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "models_dir": str(models_dir), "demographics": False,
        "broker": {"host": broker.host, "port": broker.port},
        "detector": {"model": "yolox_nano"},
        "installer": {"host": "127.0.0.1", "port": 0, "password_hash_file": str(secret)},
        "cameras": [{"camera_id": "door", "source": "unused.mp4",
                     "analytics": {"identity": {"reid": False}}}],
    })
    with pytest.raises(ConfigError, match=r"installer\.password_hash_file"):
        EdgeNode(cfg, *real_parts(cfg))


def test_the_page_over_https(tmp_path: Path, broker: Mosquitto, models_dir: Path,
                             eval_dir: Path) -> None:
    """With cert_file/key_file the page is https only: the password never crosses the LAN in
    clear (certificate from deploy/mosquitto/make_tls.sh)."""
    tls = tmp_path / "tls"
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
    subprocess.run(["sh", str(deploy / "make_tls.sh"), str(tls), "localhost", "127.0.0.1"],
                   check=True, capture_output=True)
    n = Node(tmp_path, broker, models_dir, eval_dir / "PETS09-S2L1" / "video.mp4",
             tls={"cert_file": str(tls / "server.crt"), "key_file": str(tls / "server.key")})
    try:
        url = n.url.replace("http://", "https://")
        ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(url + "/api/cameras",
                                     headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            assert r.status == 200 and json.loads(r.read())[0]["camera_id"] == "door"
        with pytest.raises(OSError) as refused:  # plain http is not served: the TLS
            urllib.request.urlopen(n.url + "/api/cameras", timeout=10)  # server hangs up
        assert not isinstance(refused.value, urllib.error.HTTPError)
        assert "timed out" not in str(refused.value)
    finally:
        n.close()
