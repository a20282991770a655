"""The admin page in a real browser: Debian's Chromium, headless, driven by Playwright.

``embedauth serve`` runs as a subprocess (once per framework and module) over its own SQLite file,
with a product name and an accent colour of its own; the tests seed it in-process over the same
file. Playwright never downloads a browser here: it drives ``chromium`` from PATH (installed by
``.ci/run`` when missing). Without it the tests skip, or fail under ``EMBEDAUTH_REQUIRE_SERVICES=1``.

Every page a test opens is watched: an uncaught error, a Content Security Policy violation or a
failed request fails the test at teardown. Screenshots go to ``tests/browser/artifacts/`` (or
``EMBEDAUTH_ARTIFACTS``).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, expect, sync_playwright

from embedauth import EmbedAuth
from embedauth.http.management import ADMIN_SCOPE, CATALOG_SCOPE
from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import FRAMEWORKS, _start, _wait_until_ready, child_env, free_port, stop
from tests.services import unavailable

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EMBEDAUTH_ARTIFACTS") or REPO / "tests" / "browser" / "artifacts")
PRODUCT = "Acme Cloud"
ACCENT = "#0f766e"
PERMISSIONS = {
    "devices:read": ("List devices", "read"),
    "devices:write": ("Change devices", "write"),
    "reports:read": ("Read reports", "read"),
    "reports:write": ("Publish reports", "write"),
    ADMIN_SCOPE: ("Administer this site's app registrations", "write"),
    CATALOG_SCOPE: ("Change the permission catalog", "write"),
}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
AXE = (importlib.resources.files("axe_playwright_python") / "axe.min.js").read_text()


@dataclass
class Site:
    """``embedauth serve`` on ``base_url``, its admin registration, and in-process access to its storage."""

    framework: str
    base_url: str
    auth: EmbedAuth
    admin_id: str
    admin_secret: str = field(repr=False)
    other_tenant: str
    """A registration of site-2, which site-1's admin must never see."""

    def url(self, path: str) -> str:
        return self.base_url + path

    def token(self, client_id: str, client_secret: str) -> httpx.Response:
        """The token endpoint's answer to ``client_credentials`` with this secret (Basic)."""
        return httpx.post(
            self.url("/oauth/token"),
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
        )

    def token_with_assertion(self, assertion: str) -> httpx.Response:
        """The token endpoint's answer to ``client_credentials`` with a client assertion (RFC 7523)."""
        return httpx.post(
            self.url("/oauth/token"),
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )

    def whoami(self, access_token: str) -> httpx.Response:
        return httpx.get(self.url("/demo/whoami"), headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, for one module: Playwright's sync API runs an event loop in this thread while it
    is open, so it must be closed before any later test calls ``asyncio.run``."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("chromium", "no chromium on PATH", "apt-get install chromium (.ci/run does)")
        raise AssertionError("unreachable")
    with sync_playwright() as playwright:
        yield _launch(playwright, path)


def _launch(playwright: Playwright, path: str) -> Browser:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])


@pytest.fixture(scope="module", params=FRAMEWORKS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    framework = str(request.param)
    directory = tmp_path_factory.mktemp(f"admin-page-{framework}")
    storage_url = f"sqlite:///{directory / 'e.db'}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = child_env(
        EMBEDAUTH_ADMIN_PRODUCT_NAME=PRODUCT,
        EMBEDAUTH_ADMIN_COLORS=f"accent={ACCENT}",
        # Last use and audit records written behind within a fifth of a second, so the page shows them.
        EMBEDAUTH_LAST_USED_INTERVAL="0.2",
        EMBEDAUTH_AUDIT_FLUSH_INTERVAL="0.2",
    )
    with EmbedAuth(storage_url, issuer=base_url, **TEST_SETTINGS) as auth:
        for name, (description, access) in PERMISSIONS.items():
            auth.permissions.add(name, description=description, access=access)
        admin = auth.registrations.create(
            tenant="site-1", name="Admin console", scopes=[ADMIN_SCOPE, CATALOG_SCOPE]
        )
        other = auth.registrations.create(tenant="site-2", name="Other tenant's app", scopes=["devices:read"])
        log_path = directory / "serve.log"
        with log_path.open("w") as log:
            process = _start(storage_url, port, framework, log, env)
            try:
                _wait_until_ready(process, base_url, log_path)
                yield Site(framework, base_url, auth, admin.client_id, admin.client_secret, other.client_id)
            finally:
                stop(process)
        assert auth.registrations.get(other.client_id).name == "Other tenant's app"  # never reached


@dataclass
class Watch:
    """What went wrong on a page: uncaught errors, console errors (a CSP violation is one), requests
    that failed, any 5xx, and any 4xx but the API's and the token endpoint's (which the page shows)."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # The browser logs every 4xx as "Failed to load resource"; response() judges those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def response(self, response: Response) -> None:
        path = urlsplit(response.url).path
        answered = path.startswith("/admin/api/") or path == "/oauth/token"
        if response.status >= 500 or (response.status >= 400 and not answered):
            self.problems.append(f"{response.status}: {response.request.method} {response.url}")


@pytest.fixture
def watch() -> Watch:
    return Watch()


def open_page(browser: Browser, site: Site, watch: Watch, viewport: dict[str, int] = DESKTOP) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base_url)
    page = context.new_page()
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.problems.append(f"uncaught: {error}"))
    page.on("response", watch.response)
    page.on("requestfailed", lambda r: watch.problems.append(f"request failed: {r.method} {r.url}"))
    page.goto(site.url("/admin/"))
    return page


@pytest.fixture
def page(browser: Browser, site: Site, watch: Watch) -> Iterator[Page]:
    opened = open_page(browser, site, watch)
    yield opened
    opened.context.close()
    assert watch.problems == []


def sign_in(page: Page, site: Site, client_id: str | None = None, client_secret: str | None = None) -> None:
    form = page.locator("#view-sign-in")
    form.get_by_label("Client ID").fill(client_id or site.admin_id)
    form.get_by_label("Client secret").fill(client_secret or site.admin_secret)
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="App registrations", level=1)).to_be_visible()
    expect(page.locator("#grid-body tr").first).to_be_visible()


def axe_violations(page: Page, *impacts: str) -> list[dict[str, Any]]:
    """axe-core's violations of ``impacts`` (``serious``, ``critical``) on the page as it is now."""
    page.evaluate(AXE)  # by the DevTools protocol, so the page's CSP does not apply to it
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["html"] for n in v["nodes"]][:3],
        }
        for v in results["violations"]
        if v["impact"] in impacts
    ]


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


_OVERFLOW = """() => {
  const dialogs = [...document.querySelectorAll("dialog[open]")];
  return Math.max(
    0,
    document.documentElement.scrollWidth - window.innerWidth,
    ...dialogs.map((d) => Math.ceil(d.getBoundingClientRect().right) - window.innerWidth),
    ...dialogs.map((d) => d.scrollWidth - d.clientWidth),
  );
}"""


def overflow(page: Page) -> int:
    """How many CSS pixels the page, or an open dialog, is wider than it shows (0: nothing to scroll
    sideways)."""
    width: int = page.evaluate(_OVERFLOW)
    return width
