"""The camera setup page in real Chromium against `storesense gateway run` (a process), a real
Mosquitto and a running edge node (real EdgeNode: MQTT, remote config, status; an idle
camera): publish from the page, the retained message on the broker, the node applies it and
its status shows the version; roll back from the page and the earlier config is applied
again. Then the page in Chinese, for a franchisee, and at a phone's width."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from dashboards.browser import signed_in_context
from edge.node.config import EdgeConfig
from edge.node.service import EdgeNode
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.broker import free_port
from storesense.schema import CameraConfigMessage
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.dashboards.conftest import wait_settled
from tests.edge_node.helpers import Collector, NoAnalytics, NoFrames
from tests.gateway.helpers import store
from tests.gateway.mqtt_helpers import start_gateway, stop
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.broker]
TOPICS = Topics()
LINE = {"name": "door", "points": [0.1, 0.6, 0.9, 0.6], "in_direction": "left_to_right"}
PAGE = "/config.html?store=s1&camera=door"


@dataclass
class Site:
    url: str
    hq: str
    franchisee: str
    node: EdgeNode
    broker: Mosquitto


@pytest.fixture
def site(tmp_path: Path, broker: Mosquitto) -> Iterator[Site]:
    db = tmp_path / "gateway.db"
    storage = Storage(db)
    storage.upsert_stores([store("s1", franchisee="f1")])
    hq = create_token(storage, "HQ ops", "hq")
    fr = create_token(storage, "f1 manager", "franchisee:f1")
    storage.close()
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text("\n".join([
        f'db = "{db}"', "status_interval_s = 0.3", "[mqtt]", f'host = "{broker.host}"',
        f"port = {broker.port}", "[api]", f"port = {port}", "[alerts]", "enabled = false", ""]))
    gw = start_gateway(config, tmp_path / "gateway.log", api=True)
    cfg = EdgeConfig.model_validate({
        "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "status_interval_s": 0.3, "demographics": False,
        "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                   "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
        "cameras": [{"camera_id": "door", "source": "unused.mp4"}],
    })
    node = EdgeNode(cfg, lambda cam: NoFrames(), lambda cam, a: NoAnalytics())
    done = threading.Event()
    thread = threading.Thread(target=node.run, args=(done,))
    thread.start()
    try:
        wait_until(lambda: "subscribed" in (tmp_path / "gateway.log").read_text(), 30,
                   "the gateway's ingest")
        yield Site(f"http://127.0.0.1:{port}", hq, fr, node, broker)
    finally:
        done.set()
        thread.join(30)
        stop(gw)


def _open(browser: Browser, site: Site, token: str, lang: str = "en",
          width: int = 1280) -> tuple[Page, list[str]]:
    """The page, loaded, and the script errors it raises from now on."""
    ctx = signed_in_context(browser, token, lang, width=width)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + PAGE)
    wait_settled(page)
    assert page.evaluate("() => document.body.dataset.state") == "ready", page.inner_text("body")
    return page, errors


def _publish(page: Page, analytics: dict[str, object], expect: str) -> None:
    page.fill("#cf-json", json.dumps(analytics))
    page.click("#publish")
    page.wait_for_function("(t) => document.querySelector('#cf-msg').textContent.includes(t)",
                           arg=expect, timeout=15_000)


def _running_on_page(page: Page, text: str) -> bool:
    """Reload until the devices table shows ``text`` (the node reports every 0.3 s)."""
    page.reload()
    wait_settled(page)
    return text in page.inner_text("#running")


def test_publish_and_roll_back_from_the_page_reach_the_running_node(
        browser: Browser, site: Site) -> None:
    page, errors = _open(browser, site, site.hq)
    assert "No configuration has been published" in page.inner_text("#history")
    _publish(page, {"lines": [LINE], "window_s": 30}, "Version 1 published")
    retained = Collector(site.broker, TOPICS.config("s1", "door"), client_id="check")
    wait_until(lambda: bool(retained.payloads()), 10, "the retained config")
    msg = CameraConfigMessage.model_validate_json(retained.payloads()[0])
    retained.close()
    assert (msg.config_version, msg.analytics.window_s, msg.analytics.lines[0].name) == (
        "hq-1", 30, "door")
    worker = site.node.workers["door"]
    wait_until(lambda: worker.config_version == "hq-1", 15, "the node to apply hq-1")
    wait_until(lambda: _running_on_page(page, "1 · hq-1"), 20, "the page to show hq-1 running")

    _publish(page, {"lines": [LINE], "window_s": 20}, "Version 2 published")
    wait_until(lambda: worker.config_version == "hq-2", 15, "the node to apply hq-2")
    assert worker.applied is not None and worker.applied.analytics.window_s == 20

    page.click("#history-table tr[data-version='1'] button.rollback")
    page.wait_for_function("() => document.querySelector('#cf-msg').textContent"
                           ".includes('Rolled back: version 3')", timeout=15_000)
    wait_until(lambda: worker.config_version == "hq-3", 15, "the node to apply the rollback")
    assert worker.applied is not None and worker.applied.analytics == msg.analytics
    wait_until(lambda: _running_on_page(page, "3 · hq-3"), 20, "the page to show hq-3")
    rows = page.locator("#history-table tbody tr").all_inner_texts()
    assert len(rows) == 3 and "Rollback to 1" in rows[0] and "HQ ops" in rows[0]

    # a mistake on the page is said, nothing is published
    page.fill("#cf-json", '{"lines": [')
    page.click("#publish")
    assert "Not valid JSON" in page.inner_text("#cf-msg")
    _publish(page, {"window_s": 5}, "window_s")
    assert page.locator("#history-table tbody tr").count() == 3
    assert not errors


def test_chinese_franchisee_and_phone(browser: Browser, site: Site) -> None:
    page, _ = _open(browser, site, site.hq)
    _publish(page, {"lines": [LINE]}, "Version 1 published")
    for lang in ("en", "zh-CN"):
        hq, _ = _open(browser, site, site.hq, lang=lang, width=390)
        assert hq.evaluate("() => document.documentElement.scrollWidth") <= 390, lang
        mine, errors = _open(browser, site, site.franchisee, lang=lang, width=390)
        assert mine.locator("#hq-only").is_visible()
        assert not mine.locator("#publish").is_visible()
        assert mine.locator("#history-table button.rollback").count() == 0
        mine.click("#history-table tr[data-version='1'] button.edit")  # may look, not send
        width = mine.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"config page ({lang}) is {width} px wide"
        assert not errors
    assert mine.inner_text("h1") == "摄像头配置"
    assert "总部" in mine.inner_text("#history-table")
    assert "只有总部可以发布" in mine.inner_text("#hq-only")
