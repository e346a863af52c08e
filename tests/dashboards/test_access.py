"""Sign-in, sign-out and the franchisee's scope, in a real browser."""

from __future__ import annotations

import pytest

from dashboards.demo import DemoGateway
from gateway.auth import create_token, revoke_token
from tests.dashboards.conftest import OpenPage, wait_settled

pytestmark = pytest.mark.browser


def test_sign_in_with_a_token_and_sign_out(open_page: OpenPage, gateway: DemoGateway) -> None:
    page = open_page("/")
    assert page.locator("form#signin").is_visible()
    page.fill("#token", "not-a-token")
    page.click("form#signin button[type=submit]")
    wait_settled(page)
    assert "not recognised" in page.inner_text("form#signin")

    page.fill("#token", gateway.hq_token)
    page.click("form#signin button[type=submit]")
    wait_settled(page)
    assert page.evaluate("document.body.dataset.state") == "ready"
    assert page.inner_text("#user-name") == "HQ operations"
    assert "all stores" in page.inner_text("#user-scope")

    page.click("#signout")
    wait_settled(page)
    assert page.locator("form#signin").is_visible()
    assert page.evaluate("sessionStorage.getItem('storesense.token')") is None


def test_franchisee_sees_only_its_own_stores(open_page: OpenPage, gateway: DemoGateway) -> None:
    with gateway.client(gateway.franchisee_token) as api:
        me = api.get("/me").json()
    own = set(me["store_ids"])
    others = {s.store_id for s in gateway.stores} - own
    assert own and others

    page = open_page("/", token=gateway.franchisee_token)
    listed = {tr.get_attribute("data-store-id")
              for tr in page.locator("#ranking tbody tr").all()}
    assert listed == own
    assert gateway.franchisee in page.inner_text("#user-scope")

    other = sorted(others)[0]
    for path in (f"/store.html?store={other}", f"/heatmap.html?store={other}"):
        page = open_page(path, token=gateway.franchisee_token)
        assert page.evaluate("document.body.dataset.state") == "error"
        msg = page.inner_text("#page-error")
        assert f"You do not have access to store {other}" in msg, (path, msg)

    mine = sorted(own)[0]
    page = open_page(f"/store.html?store={mine}", token=gateway.franchisee_token)
    assert page.evaluate("document.body.dataset.state") == "ready"


def test_a_token_revoked_mid_session_brings_back_sign_in(
        open_page: OpenPage, gateway: DemoGateway) -> None:
    token = create_token(gateway.storage, "temp-shift", "hq")
    page = open_page("/", token=token)
    assert page.evaluate("document.body.dataset.state") == "ready"
    assert revoke_token(gateway.storage, "temp-shift") == 1
    page.select_option("#f-range", "7")
    page.wait_for_selector("form#signin")
    assert "not recognised" in page.inner_text("form#signin")
    assert page.evaluate("sessionStorage.getItem('storesense.token')") is None
