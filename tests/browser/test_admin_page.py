"""The admin page, in Chromium, against ``embedauth serve`` under each framework.

The journey the issue names (sign in, create with two permissions picked by typing, copy the
secret, get a token with it, disable and see the token refused, enable, rotate, upload a
certificate and sign in with it, bulk delete), then what a demanding admin expects besides: the
screenshots at 1280×800 and 390×844 with nothing wider than the screen, axe-core with no serious or
critical violation in every state, the keyboard alone, hostile names shown as text, field errors
beside their fields, another tenant's registrations out of sight, and the product's own name and
colour.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Browser, Locator, Page, expect

from embedauth import RegistrationNotFound
from tests.browser.conftest import (
    ACCENT,
    DESKTOP,
    PHONE,
    PRODUCT,
    Site,
    Watch,
    axe_violations,
    open_page,
    overflow,
    screenshot,
    sign_in,
)
from tests.keys import certificate_pem, private_key

pytestmark = pytest.mark.timeout(180)


def grid_row(page: Page, name: str) -> Locator:
    return page.locator("#grid-body tr").filter(has=page.get_by_role("button", name=name, exact=True))


def matches(page: Page) -> Locator:
    """The permission picker's options."""
    return page.get_by_role("listbox", name="Matching permissions").get_by_role("option")


def open_details(page: Page, name: str) -> Locator:
    grid_row(page, name).get_by_role("button", name=name, exact=True).click()
    details = page.get_by_role("dialog", name=name)
    expect(details).to_be_visible()
    return details


def create(page: Page, name: str, *typed: str) -> tuple[str, str]:
    """Create ``name`` in the page, picking a permission for each of ``typed`` by typing it and
    pressing Enter on the first match; the client ID and secret from the secret-shown-once dialog."""
    page.get_by_role("button", name="New registration").click()
    dialog = page.get_by_role("dialog", name="New registration")
    dialog.get_by_role("textbox", name="Name").fill(name)
    picker = dialog.get_by_role("combobox", name="Permissions")
    for text in typed:
        picker.press_sequentially(text)
        expect(matches(page).first).to_contain_text(text)
        picker.press("Enter")
    dialog.get_by_role("button", name="Create").click()
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    expect(shown).to_be_visible()
    client_id = shown.get_by_label("Client ID").input_value()
    secret = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Done").click()
    expect(shown).to_be_hidden()
    return client_id, secret


def test_the_journey(page: Page, site: Site, tmp_path: Path) -> None:
    sign_in(page, site)

    # Create, with two permissions picked by typing; typing filters the list as it goes.
    page.get_by_role("button", name="New registration").click()
    dialog = page.get_by_role("dialog", name="New registration")
    dialog.get_by_role("textbox", name="Name").fill("Backup script")
    picker = dialog.get_by_role("combobox", name="Permissions")
    picker.press_sequentially("devices")
    options = matches(page)
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text("devices:read")  # read before write, as the seeds advise
    picker.press("Enter")
    picker.press_sequentially("rep")
    expect(options).to_have_count(2)  # reports:read, reports:write; devices:read is chosen already
    picker.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    picker.press("Enter")
    chips = dialog.get_by_role("list", name="Chosen permissions").get_by_role("listitem")
    expect(chips).to_have_text([re.compile("devices:read"), re.compile("reports:write")])
    dialog.get_by_role("button", name="Create").click()

    # The secret, shown once, copied with its button.
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    expect(shown).to_contain_text("shown only once")
    client_id = shown.get_by_label("Client ID").input_value()
    displayed = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Copy secret").click()
    expect(shown.get_by_role("button", name="Copied")).to_be_visible()
    secret: str = page.evaluate("navigator.clipboard.readText()")
    assert secret == displayed and secret.startswith("eas_")
    shown.get_by_role("button", name="Done").click()
    expect(page.locator("#secret-value")).to_have_value("")  # gone from the page once closed
    expect(grid_row(page, "Backup script")).to_contain_text(client_id)
    assert site.auth.registrations.get(client_id).scopes == ("devices:read", "reports:write")

    # The secret works over HTTP.
    issued = site.token(client_id, secret)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "devices:read reports:write"
    access_token = issued.json()["access_token"]
    assert site.whoami(access_token).status_code == 200

    # Disable in the page: the token is refused, and so is the secret.
    details = open_details(page, "Backup script")
    details.get_by_role("button", name="Disable").click()
    expect(details.get_by_role("button", name="Enable")).to_be_visible()
    expect(details).to_contain_text("Disabled")
    refused = site.whoami(access_token)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert site.token(client_id, secret).status_code == 401

    # Enable: the secret works again.
    details.get_by_role("button", name="Enable").click()
    expect(details.get_by_role("button", name="Disable")).to_be_visible()
    assert site.token(client_id, secret).status_code == 200

    # Generate a new secret: the old one is dead at once, the new one works.
    details.get_by_role("button", name="Generate new secret").click()
    choose = page.get_by_role("dialog", name="Generate a new secret")
    choose.get_by_label("New secret's lifetime").select_option(label="1 year")
    choose.get_by_role("button", name="Generate new secret").click()
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    expect(shown).to_be_visible()
    rotated = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Done").click()
    assert rotated != secret
    assert site.token(client_id, secret).status_code == 401
    assert site.token(client_id, rotated).status_code == 200
    expect(details.locator("table").first.locator("tbody tr")).to_have_count(1)

    # Upload a certificate (DER, as a .cer file), then sign a client assertion with its key.
    key = private_key("p256")
    der = x509.load_pem_x509_certificate(certificate_pem(key, now=time.time(), cn="journey")).public_bytes(
        serialization.Encoding.DER
    )
    (tmp_path / "journey.cer").write_bytes(der)
    details.get_by_label("Upload a certificate (.cer, .pem)").set_input_files(tmp_path / "journey.cer")
    expect(details.get_by_role("table").nth(1)).to_contain_text("CN=journey")
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": site.url("/oauth/token"),
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
        },
        key,
        algorithm="ES256",
    )
    signed = site.token_with_assertion(assertion)
    assert signed.status_code == 200, signed.text
    details.get_by_role("button", name="Close").click()

    # Bulk delete, behind a confirmation.
    others = [
        site.auth.registrations.create(tenant="site-1", name=f"Bulk {n}", scopes=["devices:read"])
        for n in (1, 2)
    ]
    page.get_by_label("Filter by name").fill("Bulk")
    expect(page.locator("#grid-body tr")).to_have_text([re.compile("Bulk 2"), re.compile("Bulk 1")])
    page.get_by_label("Select all on this page").check()
    page.get_by_label("Filter by name").fill("Backup")
    expect(page.locator("#grid-body tr")).to_have_text([re.compile("Backup script")])
    page.get_by_label("Select Backup script").check()
    page.get_by_role("button", name="Delete selected (3)").click()
    confirm = page.get_by_role("dialog", name="Delete 3 registrations?")
    confirm.get_by_role("button", name="Delete 3 registrations").click()
    expect(page.locator("#grid-empty")).to_be_visible()
    for gone in (client_id, *(o.client_id for o in others)):
        with pytest.raises(RegistrationNotFound):
            site.auth.registrations.get(gone)
    assert site.token(client_id, rotated).status_code == 401


def test_cancel_leaves_everything_as_it_was(page: Page, site: Site) -> None:
    sign_in(page, site)
    client_id, _ = create(page, "Keep me", "devices:read")
    page.get_by_label("Select Keep me").check()
    page.get_by_role("button", name="Delete selected (1)").click()
    page.get_by_role("dialog", name="Delete 1 registration?").get_by_role("button", name="Cancel").click()
    details = open_details(page, "Keep me")
    details.get_by_role("button", name="Delete", exact=True).click()
    page.keyboard.press("Escape")  # the confirmation, refused from the keyboard
    expect(details).to_be_visible()
    assert site.auth.registrations.get(client_id).name == "Keep me"
    site.auth.registrations.delete(client_id)


def test_only_the_admins_tenant_is_in_sight(page: Page, site: Site) -> None:
    sign_in(page, site)
    expect(page.locator("#grid-body")).not_to_contain_text(site.other_tenant)
    expect(page.locator("#grid-body")).not_to_contain_text("Other tenant's app")
    page.get_by_label("Filter by name").fill("Other")
    expect(page.locator("#grid-empty")).to_be_visible()


def test_hostile_text_stays_text(page: Page, site: Site) -> None:
    """A registration's name and description, and a permission's description, go into the page as
    text: markup in them is shown, never run or parsed."""
    hostile = '<img src=x onerror="window.__owned=1">'
    made = site.auth.registrations.create(
        tenant="site-1", name=f"{hostile} app", description=f"<script>window.__owned=2</script>{hostile}"
    )
    site.auth.permissions.add("xss:read", description=hostile)
    try:
        sign_in(page, site)
        details = open_details(page, f"{hostile} app")
        expect(details).to_contain_text("<script>window.__owned=2</script>")
        details.get_by_role("button", name="Close").click()
        page.get_by_role("button", name="Permissions").click()
        expect(page.locator("#permission-body")).to_contain_text(hostile)
        assert page.evaluate("window.__owned") is None
        assert page.locator("#main img").count() == 0
    finally:
        site.auth.registrations.delete(made.client_id)
        site.auth.permissions.remove("xss:read")


def test_refused_fields_are_named_beside_them(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.get_by_role("button", name="New registration").click()
    dialog = page.get_by_role("dialog", name="New registration")
    dialog.get_by_role("textbox", name="Name").fill("   ")
    dialog.get_by_label("Specific customers").check()
    dialog.get_by_label("Customer IDs, separated by commas").fill("not valid!")
    dialog.get_by_role("button", name="Create").click()
    name = dialog.get_by_role("textbox", name="Name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    expect(dialog.locator("#edit-name-error")).not_to_be_empty()
    expect(dialog.get_by_label("Customer IDs, separated by commas")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_role("textbox", name="Name").fill("Fixed")
    dialog.get_by_label("All customers").check()
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("dialog", name="Copy the client secret now")).to_be_visible()
    page.get_by_role("button", name="Done").click()
    made = next(r for r in site.auth.registrations.list(tenant="site-1").items if r.name == "Fixed")
    site.auth.registrations.delete(made.client_id)


def test_a_refused_sign_in_says_so_and_keeps_nothing(browser: Browser, site: Site, watch: Watch) -> None:
    page = open_page(browser, site, watch)
    form = page.locator("#view-sign-in")
    form.get_by_label("Client ID").fill(site.admin_id)
    form.get_by_label("Client secret").fill("eas_wrong")
    form.get_by_role("button", name="Sign in").click()
    expect(form.get_by_role("alert")).to_have_text("That client ID and secret were not accepted.")
    # A registration without embedauth:admin gets a token, but the API refuses it.
    plain = site.auth.registrations.create(tenant="site-1", name="Not an admin", scopes=["devices:read"])
    try:
        form.get_by_label("Client ID").fill(plain.client_id)
        form.get_by_label("Client secret").fill(plain.client_secret)
        form.get_by_role("button", name="Sign in").click()
        expect(form.get_by_role("alert")).to_contain_text("not an admin")
        expect(page.locator("#sections")).to_be_hidden()
    finally:
        site.auth.registrations.delete(plain.client_id)
        page.context.close()
    assert watch.problems == []


def test_the_keyboard_alone_creates_a_registration(page: Page, site: Site) -> None:
    form = page.locator("#view-sign-in")
    form.get_by_label("Client ID").focus()
    page.keyboard.type(site.admin_id)
    page.keyboard.press("Tab")
    page.keyboard.type(site.admin_secret)
    page.keyboard.press("Enter")
    new = page.get_by_role("button", name="New registration")
    expect(new).to_be_visible()
    new.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New registration")
    expect(dialog.get_by_role("textbox", name="Name")).to_be_focused()
    page.keyboard.type("Keyboard app")
    page.keyboard.press("Tab")  # description
    page.keyboard.press("Tab")  # permissions
    expect(dialog.get_by_role("combobox", name="Permissions")).to_be_focused()
    page.keyboard.type("reports:r")
    expect(matches(page)).to_have_count(1)
    page.keyboard.press("Enter")  # picks it, and closes the list
    expect(page.get_by_role("listbox", name="Matching permissions")).to_be_hidden()
    page.keyboard.type("dev")
    expect(matches(page)).to_have_count(2)
    page.keyboard.press("Escape")  # closes the list, not the dialog
    expect(page.get_by_role("listbox", name="Matching permissions")).to_be_hidden()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Create").focus()
    page.keyboard.press("Enter")
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    expect(shown).to_be_visible()
    client_id = shown.get_by_label("Client ID").input_value()
    page.keyboard.press("Escape")
    expect(shown).to_be_hidden()
    assert site.auth.registrations.get(client_id).scopes == ("reports:read",)
    # Every control on the grid is reachable by Tab, and shows where focus is.
    focused = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.add(
            page.evaluate(
                "document.activeElement.textContent || document.activeElement.getAttribute('aria-label')"
            )
        )
    assert {"New registration", "Keyboard app", "Select Keyboard app"} <= focused
    site.auth.registrations.delete(client_id)


def test_the_product_name_and_colour_are_the_embedders(page: Page, site: Site) -> None:
    expect(page.locator("#product-name")).to_have_text(PRODUCT)
    expect(page).to_have_title(re.compile(PRODUCT))
    sign_in(page, site)
    colour = page.get_by_role("button", name="New registration").evaluate(
        "b => getComputedStyle(b).backgroundColor"
    )
    assert colour == "rgb({}, {}, {})".format(*(int(ACCENT[i : i + 2], 16) for i in (1, 3, 5)))


def test_the_expiry_banner_finds_what_stops_working_soon(page: Page, site: Site) -> None:
    soon = site.auth.registrations.create(
        tenant="site-1", name="Nearly expired", secret_expires_at=datetime.now(UTC) + timedelta(days=10)
    )
    try:
        sign_in(page, site)
        banner = page.locator("#expiry-banner")
        expect(banner).to_contain_text("within 30 days")
        banner.get_by_role("button", name="Show them").click()
        expect(page.locator("#grid-body tr")).to_have_count(1)
        expect(grid_row(page, "Nearly expired")).to_contain_text(re.compile(r"in (9|10) days"))
    finally:
        site.auth.registrations.delete(soon.client_id)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_screens_at_both_widths_fit_and_pass_axe(
    browser: Browser, site: Site, watch: Watch, viewport: dict[str, int]
) -> None:
    """The grid, the create dialog and the secret-shown-once dialog (and the rest of the screens)
    saved as screenshots; none wider than the screen; axe-core finds nothing serious or critical."""
    width = viewport["width"]
    seeded = [
        site.auth.registrations.create(tenant="site-1", name="Nightly backup", scopes=["devices:read"]),
        site.auth.registrations.create(
            tenant="site-1",
            name="Billing export",
            scopes=["reports:read"],
            secret_expires_at=datetime.now(UTC) + timedelta(days=12),
        ),
        site.auth.registrations.create(tenant="site-1", name="Door sensors", customer_scope="groups:north"),
    ]
    site.auth.registrations.disable(seeded[2].client_id)
    page = open_page(browser, site, watch, viewport)
    failures: dict[str, object] = {}

    def check(state: str, shot: str | None = None) -> None:
        if shot:
            screenshot(page, f"{shot}-{width}")
        if (wider := overflow(page)) > 0:
            failures[f"{state}: wider than the screen by"] = wider
        if violations := axe_violations(page, "serious", "critical"):
            failures[f"{state}: axe"] = violations

    try:
        check("sign-in", "sign-in")
        sign_in(page, site)
        expect(page.locator("#expiry-banner")).to_be_visible()
        check("grid", "grid")
        page.get_by_role("button", name="New registration").click()
        dialog = page.get_by_role("dialog", name="New registration")
        dialog.get_by_role("textbox", name="Name").fill("Warehouse sync")
        picker = dialog.get_by_role("combobox", name="Permissions")
        picker.press_sequentially("devices")
        expect(matches(page).first).to_contain_text("devices:read")
        picker.press("Enter")
        picker.press_sequentially("rep")
        expect(matches(page)).to_have_count(2)
        check("create", "create")
        picker.press("Escape")
        dialog.get_by_role("button", name="Create").click()
        expect(page.get_by_role("dialog", name="Copy the client secret now")).to_be_visible()
        check("secret", "secret")
        page.get_by_role("button", name="Done").click()
        details = open_details(page, "Billing export")
        check("details", "details")
        details.get_by_role("button", name="Close").click()
        page.get_by_role("button", name="Permissions").click()
        expect(page.locator("#permission-body tr").first).to_be_visible()
        check("permissions", "permissions")
        page.get_by_role("button", name="My API tokens").click()
        check("tokens")
    finally:
        page.context.close()
        for r in site.auth.registrations.list(tenant="site-1").items:
            if r.client_id != site.admin_id:
                site.auth.registrations.delete(r.client_id)
    assert failures == {}
    assert watch.problems == []


def test_edit_add_and_delete_a_secret_renew_and_remove_a_certificate(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sign_in(page, site)
    client_id, first = create(page, "Sensor feed", "devices:read", "reports:read")

    details = open_details(page, "Sensor feed")
    details.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog", name="Edit Sensor feed")
    editor.get_by_role("textbox", name="Name").fill("Sensor feed v2")
    editor.get_by_role("button", name="Remove reports:read").click()
    editor.get_by_label("Customer groups").check()
    editor.get_by_label("Customer group IDs, separated by commas").fill("north, south")
    editor.get_by_role("button", name="Save").click()
    details = page.get_by_role("dialog", name="Sensor feed v2")
    expect(details).to_contain_text("Groups: north, south")
    edited = site.auth.registrations.get(client_id)
    assert (edited.name, edited.scopes, str(edited.customer_scope)) == (
        "Sensor feed v2",
        ("devices:read",),
        "groups:north,south",
    )

    # A second secret beside the first: both work; delete the first: only the second does.
    details.get_by_role("button", name="Add secret").click()
    page.get_by_role("dialog", name="Add a secret").get_by_role("button", name="Add secret").click()
    shown = page.get_by_role("dialog", name="Copy the client secret now")
    second = shown.get_by_label("Client secret").input_value()
    shown.get_by_role("button", name="Done").click()
    secrets = details.get_by_role("table", name="Secrets").locator("tbody tr")
    expect(secrets).to_have_count(2)
    assert (
        site.token(client_id, first).status_code == 200 and site.token(client_id, second).status_code == 200
    )
    secrets.first.get_by_role("button", name=re.compile("Delete secret")).click()
    page.get_by_role("dialog", name="Delete this secret?").get_by_role("button", name="Delete secret").click()
    expect(secrets).to_have_count(1)
    assert (
        site.token(client_id, first).status_code == 401 and site.token(client_id, second).status_code == 200
    )

    # Renew: the registration's own expiry, a year from now.
    details.get_by_role("button", name="Renew").click()
    renew = page.get_by_role("dialog", name="Renew Sensor feed v2")
    renew.get_by_label("Works for").select_option(label="1 year")
    renew.get_by_role("button", name="Renew").click()
    expect(renew).to_be_hidden()
    renewed = site.auth.registrations.get(client_id).registration_expires_at
    assert renewed is not None and abs(renewed - (datetime.now(UTC) + timedelta(days=365))) < timedelta(
        minutes=1
    )
    expect(details).to_contain_text(renewed.strftime("%Y-%m-%d"))

    # A PEM certificate, uploaded then removed.
    (tmp_path / "feed.pem").write_bytes(certificate_pem(private_key("ed25519"), now=time.time(), cn="feed"))
    details.get_by_label("Upload a certificate (.cer, .pem)").set_input_files(tmp_path / "feed.pem")
    certificates = details.get_by_role("table", name="Certificates").locator("tbody tr")
    expect(certificates).to_have_count(1)
    certificates.first.get_by_role("button", name="Remove certificate CN=feed").click()
    page.get_by_role("dialog", name="Remove this certificate?").get_by_role(
        "button", name="Remove certificate"
    ).click()
    expect(details).to_contain_text("No certificates.")
    assert site.auth.registrations.get(client_id).certificates == ()
    site.auth.registrations.delete(client_id)
