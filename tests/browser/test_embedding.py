"""The page inside an embedding app that signs people in itself (``sign_in="app"``): no sign-in
form, a link to the app's own sign-in on a 401, and the admin's tenants as the guard says.

The app is Starlette with ``mount_admin(guard=..., sign_in_url=...)``, served by uvicorn in a thread;
the guard trusts a header (as behind a signing-in proxy), which the browser context sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, expect
from starlette.applications import Starlette
from starlette.requests import Request

from embedauth import Admin, EmbedAuth
from embedauth.adapters.starlette import mount_admin
from tests.browser.conftest import Watch
from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import free_port

pytestmark = pytest.mark.timeout(120)


def admin_of(request: Request) -> Admin | None:
    user = request.headers.get("x-signed-in-user")
    if user is None:
        return None
    return Admin(identity=user, tenants=frozenset({"site-1", "site-2"}), manages_catalog=False)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    storage = f"sqlite:///{tmp_path_factory.mktemp('embedding') / 'e.db'}"
    with EmbedAuth(storage, issuer="http://127.0.0.1", **TEST_SETTINGS) as auth:
        auth.permissions.add("devices:read", description="List devices")
        for tenant in ("site-1", "site-2", "site-3"):
            auth.registrations.create(tenant=tenant, name=f"{tenant} backup", scopes=["devices:read"])
        app = Starlette()
        mount_admin(app, auth, guard=admin_of, sign_in_url="/login")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        assert httpx.get(url + "/admin/config.json").json()["sign_in"] == "app"
        yield url
        server.should_exit = True
        thread.join(10)


def test_nobody_signed_in_is_sent_to_the_apps_sign_in(browser: Browser, app_url: str) -> None:
    watch = Watch()
    context = browser.new_context()
    page = context.new_page()
    page.on("console", watch.console)
    page.goto(app_url + "/admin/")
    expect(page.get_by_role("heading", name="Please sign in")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_have_attribute("href", "/login")
    expect(page.locator("#view-sign-in")).to_be_hidden()  # never asks for a client secret
    context.close()
    assert watch.problems == []


def test_the_apps_admin_sees_their_tenants_only(browser: Browser, app_url: str) -> None:
    watch = Watch()
    context = browser.new_context(extra_http_headers={"x-signed-in-user": "alice@example.com"})
    page = context.new_page()
    page.on("console", watch.console)
    page.on("response", watch.response)
    page.goto(app_url + "/admin/")
    expect(page.locator("#who")).to_have_text("alice@example.com")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()  # the app signs out
    rows = page.locator("#grid-body tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#grid-body")).not_to_contain_text("site-3")
    page.get_by_role("search").get_by_label("Site").select_option("site-2")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("site-2 backup")
    page.get_by_role("button", name="New registration").click()
    picker = page.get_by_role("dialog", name="New registration").get_by_label("Site")
    expect(picker.locator("option")).to_have_text(["site-1", "site-2"])
    context.close()
    assert watch.problems == []
