"""The overview's device health shows which detector each device runs, and a refused model
update, in both languages (real gateway, real SQLite, real Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from dashboards.browser import signed_in_context
from dashboards.demo import register, serve
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.schema import DeviceStatus, ModelInfo, utcnow
from storesense.simulate import DEMO_STORES
from tests.dashboards.conftest import wait_settled

pytestmark = pytest.mark.browser
YOLOX = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"
BYTETRACK = "c16d43c3e067703d9327aee1f14305107c3d6bdc54a65789bdf0b7a0aca10ebf"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, str]]:
    storage = Storage(tmp_path / "gateway.db")
    stores = DEMO_STORES[:3]
    register(storage, stores)
    now = utcnow()
    runs = {0: ("yolox_nano", YOLOX), 1: ("yolox_nano", YOLOX),
            2: ("bytetrack_nano_mot17", BYTETRACK)}
    storage.ingest([
        (storage.topics.status(s.store_id, "edge-1"), DeviceStatus(
            store_id=s.store_id, device_id="edge-1", state="online",
            sent_at=now - timedelta(seconds=5),
            models=[ModelInfo(name=runs[i][0], sha256=runs[i][1])],
            model_error=("model yolox_nano-0123 rolled back: camera door: detection rate "
                         "collapsed" if i == 1 else None)).to_json())
        for i, s in enumerate(stores)])
    token = create_token(storage, "hq", "hq")
    try:
        with serve(storage) as url:
            yield url, token
    finally:
        storage.close()


@pytest.mark.parametrize(("lang", "heading", "devices"), [
    ("en", "Detector models", "2 devices"), ("zh", "检测模型", "2 台设备")])
def test_device_health_shows_each_devices_model(
    gateway: tuple[str, str], browser: Browser, lang: str, heading: str, devices: str,
) -> None:
    url, token = gateway
    ctx = signed_in_context(browser, token, lang)
    try:
        page = ctx.new_page()
        page.goto(url + "/index.html")
        wait_settled(page)
        box = page.locator("#devices")
        box.get_by_text(heading).wait_for(timeout=10_000)
        text = box.inner_text()
        assert f"yolox_nano · {YOLOX[:12]}" in text and devices in text
        assert f"bytetrack_nano_mot17 · {BYTETRACK[:12]}" in text
        assert "detection rate collapsed" in text
        per_device = box.locator(f"[data-device='{DEMO_STORES[2].store_id}/edge-1']")
        assert "bytetrack_nano_mot17" in (per_device.text_content() or "")  # inside <details>
    finally:
        ctx.close()
