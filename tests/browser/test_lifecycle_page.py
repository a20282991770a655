"""The lifecycle in the page: a rotation with a grace period (the old secret works on, and the
details say it is still in use), the expiry notices a sweep sent, and the audit trail, in the
registration's details and in the Audit view."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from embedauth.credentials.secrets import generate_client_secret
from tests.browser.conftest import Site, axe_violations, overflow, sign_in
from tests.browser.test_admin_page import create, open_details

pytestmark = pytest.mark.timeout(180)


def test_grace_rotation_shows_the_old_secret_still_in_use(page: Page, site: Site) -> None:
    sign_in(page, site)
    client_id, old = create(page, "Fleet agent", "devices:read")
    details = open_details(page, "Fleet agent")
    details.get_by_role("button", name="Generate new secret").click()
    choose = page.get_by_role("dialog", name="Generate a new secret")
    choose.get_by_label("The current secrets").select_option(label="Keep working for 1 hour")
    choose.get_by_role("button", name="Generate new secret").click()
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    new = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Done").click()
    # Both work during the grace period: the fleet switches over one by one.
    assert site.token(client_id, old).status_code == 200
    assert site.token(client_id, new).status_code == 200
    secrets = details.get_by_role("table", name="Secrets").locator("tbody tr")
    expect(secrets).to_have_count(2)
    replaced = secrets.filter(has_text="replaced")
    expect(replaced).to_have_count(1)
    # The old one was used after it was replaced; once that use is written, the details say so.
    deadline = time.monotonic() + 10
    while True:
        details.get_by_role("button", name="Close").click()
        details = open_details(page, "Fleet agent")
        text = details.get_by_role("table", name="Secrets").inner_text()
        if "still in use since it was replaced" in text or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "still in use since it was replaced" in text
    stored = site.auth.registrations.get(client_id)
    assert [s.replaced_at is not None for s in stored.secrets].count(True) == 1
    site.auth.registrations.delete(client_id)


def test_notices_and_activity_in_the_details_and_the_audit_view(page: Page, site: Site) -> None:
    soon = site.auth.registrations.create(
        tenant="site-1",
        name="Expiring export",
        scopes=["reports:read"],
        secret_expires_at=datetime.now(UTC) + timedelta(days=5),
    )
    try:
        site.auth.lifecycle.sweep()  # in-process, over the same storage: the 30- and 7-day thresholds
        site.auth.flush()
        assert site.token(soon.client_id, soon.client_secret).status_code == 200
        # A well-formed wrong secret: the registration is found, so the refusal is in its trail.
        assert site.token(soon.client_id, generate_client_secret()).status_code == 401
        sign_in(page, site)
        details = open_details(page, "Expiring export")
        notices = details.locator("#detail-notices")
        expect(notices).to_contain_text(
            re.compile(r"A secret expires in [45] days \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)")
        )
        expect(notices.locator("li")).to_have_count(1)  # the most severe pending one only
        activity = details.locator("#detail-activity")
        expect(activity).to_contain_text("token.issued", timeout=10_000)
        expect(activity).to_contain_text("token.refused")
        assert soon.client_secret not in details.inner_text()
        assert overflow(page) == 0 and axe_violations(page, "serious", "critical") == []
        details.get_by_role("button", name="Close").click()

        page.get_by_role("navigation", name="Sections").get_by_role("button", name="Audit").click()
        page.get_by_role("searchbox", name="Client ID").fill(soon.client_id)
        rows = page.locator("#audit-body tr")
        expect(rows.first).to_be_visible()
        expect(page.locator("#audit-body")).to_contain_text("notice.expiring")
        expect(page.locator("#audit-body")).to_contain_text("refused")
        assert axe_violations(page, "serious", "critical") == []
    finally:
        site.auth.registrations.delete(soon.client_id)
