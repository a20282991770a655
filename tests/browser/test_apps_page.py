"""The connect-app journey in the browser, for two tenants: a developer offers an app, site-1 connects
it declining a permission, site-2 connects it whole, site-1 pauses and resumes; the developer sees
who connected with what. Each state passes axe-core and fits the screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from embedauth import RegistrationNotFound
from embedauth.http.management import ADMIN_SCOPE
from tests.browser.conftest import PHONE, Site, Watch, axe_violations, open_page, overflow, sign_in

pytestmark = pytest.mark.timeout(180)


def admin_of(site: Site, tenant: str) -> tuple[str, str]:
    made = site.auth.registrations.create(tenant=tenant, name=f"{tenant} admin", scopes=[ADMIN_SCOPE])
    return made.client_id, made.client_secret


def fits_and_passes_axe(page: Page, state: str) -> None:
    assert overflow(page) == 0, f"{state}: wider than the screen"
    assert axe_violations(page, "serious", "critical") == [], state


def apps_view(page: Page) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("button", name="Apps").click()
    expect(page.get_by_role("heading", name="Apps", level=1)).to_be_visible()


def connect(page: Page, *, decline: tuple[str, ...] = ()) -> tuple[str, str]:
    row = page.locator("#connectable-body tr").filter(has_text="Backup service")
    row.get_by_role("button", name="Connect Backup service").click()
    dialog = page.get_by_role("dialog", name="Connect Backup service")
    expect(dialog).to_contain_text("devices:write")
    for name in decline:
        dialog.get_by_role("checkbox", name=re.compile(re.escape(name))).uncheck()
    fits_and_passes_axe(page, "connect dialog")
    dialog.get_by_role("button", name="Connect", exact=True).click()
    shown = page.get_by_role("dialog", name="Copy Backup service's secret now")
    expect(shown).to_be_visible()
    client_id = shown.get_by_label("Client ID").input_value()
    secret = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Done").click()
    return client_id, secret


def test_the_connect_app_journey_for_two_tenants(browser: Browser, site: Site, watch: Watch) -> None:
    dev_id, dev_secret = admin_of(site, "dev-1")
    site2_id, site2_secret = admin_of(site, "site-2")
    pages: list[Page] = []
    try:
        # The developer offers the app.
        dev = open_page(browser, site, watch)
        pages.append(dev)
        sign_in(dev, site, dev_id, dev_secret)
        apps_view(dev)
        expect(dev.locator("#connectable-empty")).to_be_visible()
        dev.get_by_role("button", name="New app").click()
        form = dev.get_by_role("dialog", name="New app")
        form.get_by_role("textbox", name="Name").fill("Backup service")
        form.get_by_role("textbox", name="Description").fill("Backs up your devices nightly")
        picker = form.get_by_role("combobox", name="Permissions it requests")
        for typed in ("devices:r", "devices:w"):
            picker.press_sequentially(typed)
            expect(dev.locator("#app-scope-options [role=option]").first).to_contain_text(typed)
            picker.press("Enter")
        expect(form.get_by_role("list", name="Requested permissions").get_by_role("listitem")).to_have_count(
            2
        )
        fits_and_passes_axe(dev, "new app dialog")
        form.get_by_role("button", name="Create app").click()
        expect(dev.locator("#app-body")).to_contain_text("Backup service")
        [app] = site.auth.apps.list(["dev-1"])
        assert app.scopes == ("devices:read", "devices:write") and app.allowed_tenants is None

        # site-1 connects it without devices:write.
        one = open_page(browser, site, watch)
        pages.append(one)
        sign_in(one, site)
        apps_view(one)
        expect(one.locator("#connectable-body")).to_contain_text("Backs up your devices nightly")
        fits_and_passes_axe(one, "apps view")
        one_id, one_secret = connect(one, decline=("devices:write",))
        issued = site.token(one_id, one_secret)
        assert issued.status_code == 200 and issued.json()["scope"] == "devices:read"
        one_token = issued.json()["access_token"]
        assert site.whoami(one_token).json()["tenant"] == "site-1"

        # site-2 connects it whole.
        two = open_page(browser, site, watch)
        pages.append(two)
        sign_in(two, site, site2_id, site2_secret)
        apps_view(two)
        two_id, two_secret = connect(two)
        assert site.token(two_id, two_secret).json()["scope"] == "devices:read devices:write"

        # The developer sees both, with what each allowed, and no secret.
        dev.get_by_role("button", name="Backup service", exact=True).click()
        detail = dev.get_by_role("dialog", name="Backup service")
        rows = detail.locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("site-1")
        expect(rows.nth(0)).to_contain_text("devices:read")
        expect(rows.nth(0)).not_to_contain_text("devices:write")
        expect(rows.nth(1)).to_contain_text("devices:read devices:write")
        assert one_secret not in detail.inner_text() and two_secret not in detail.inner_text()
        fits_and_passes_axe(dev, "app details")
        detail.get_by_role("button", name="Close").click()

        # site-1 pauses: its token is refused, site-2's is not; then resumes.
        one.get_by_role("button", name="Pause for site-1").click()
        expect(one.get_by_role("button", name="Resume for site-1")).to_be_visible()
        assert site.whoami(one_token).status_code == 401
        assert site.token(one_id, one_secret).status_code == 401
        assert site.token(two_id, two_secret).status_code == 200
        dev.get_by_role("button", name="Backup service", exact=True).click()
        expect(detail.locator("tbody tr").nth(0)).to_contain_text("Paused")
        detail.get_by_role("button", name="Close").click()
        one.get_by_role("button", name="Resume for site-1").click()
        expect(one.get_by_role("button", name="Pause for site-1")).to_be_visible()
        assert site.token(one_id, one_secret).status_code == 200

        # On a phone, the apps view still fits.
        phone = open_page(browser, site, watch, PHONE)
        pages.append(phone)
        sign_in(phone, site, site2_id, site2_secret)
        apps_view(phone)
        expect(phone.locator("#connectable-body")).to_contain_text("site-2")
        fits_and_passes_axe(phone, "apps view at 390")

        # The developer deletes the app: every connection goes with it.
        dev.get_by_role("button", name="Backup service", exact=True).click()
        detail.get_by_role("button", name="Delete").click()
        dev.get_by_role("dialog", name="Delete Backup service?").get_by_role(
            "button", name="Delete app"
        ).click()
        expect(dev.locator("#app-empty")).to_be_visible()
        for client_id in (one_id, two_id):
            with pytest.raises(RegistrationNotFound):
                site.auth.registrations.get(client_id)
    finally:
        for opened in pages:
            opened.context.close()
        for client_id in (dev_id, site2_id):
            site.auth.registrations.delete(client_id)
    assert watch.problems == []
