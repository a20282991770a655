"""The ``embedauth`` command, run in-process through ``main([...])`` against each backend.

Every ``main()`` call opens its own :class:`~embedauth.EmbedAuth`, as separate shell commands would,
so the lifecycle runs on the persistent backends only. Bad input runs on SQLite: each case must exit
1 (2 for argparse's usage errors) with one ``embedauth: error:`` line, no traceback, and nothing
stored. How results read as text (tables, secrets shown once) is checked in tests/cli/test_render.py.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

import embedauth.cli.commands as cli_module
from embedauth import EmbedAuth, InvalidGrant, InvalidToken
from embedauth.clock import FrozenClock, isoformat
from tests import keys
from tests.cli.conftest import Cli, at, sqlite_url
from tests.conftest import TEST_SETTINGS

UNKNOWN_CLIENT = "00000000-0000-0000-0000-000000000000"
UNKNOWN_TOKEN = "0000000000000000000000"  # a well-formed refresh token id that no token has
KEY_FIELDS = {"kid", "alg", "created_at", "activates_at", "retires_at", "expires_at"}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def certificate_pem(clock: FrozenClock) -> tuple[bytes, bytes]:
    """A self-signed EC P-256 certificate valid from a day before the clock to 30 days after, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())  # a new key each time
    return keys.certificate_pem(key, now=clock(), cn="cli-test"), keys.private_pem(key)


# ---------------------------------------------------------------------- the lifecycle, every backend


def test_registration_lifecycle(stored_url: str, cli: Cli, now_clock: FrozenClock, tmp_path: Path) -> None:
    store = ("--storage", stored_url)
    # --storage both before GROUP and after VERB
    added = cli.ok(*store, "permissions", "add", "devices:read", "--description", "List devices")
    assert added == {
        "name": "devices:read",
        "description": "List devices",
        "access": "read",
        "created_at": at(now_clock).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    assert cli.ok("permissions", "add", "devices:write", "--access", "write", *store)["access"] == "write"

    created = cli.ok(
        *store,
        "registrations",
        "create",
        "--tenant",
        "site-1",
        "--name",
        "Backup script",
        "--scope",
        "devices:read devices:write",
    )
    client_id, secret = created["client_id"], created["client_secret"]
    assert secret.startswith("eas_")
    assert created["tenant"] == "site-1"
    assert created["name"] == "Backup script"
    assert created["scopes"] == ["devices:read", "devices:write"]
    assert created["enabled"] is True
    assert parse(created["created_at"]) == at(now_clock)
    assert created["last_used_at"] is None
    assert parse(created["expires_at"]) == at(now_clock, 365)

    listed = cli.ok("registrations", "list", "--tenant", "site-1", *store)
    assert isinstance(listed, list)
    assert [r["client_id"] for r in listed] == [client_id]
    once_only = {"client_secret", "secret_id", "secret_expires_at"}
    registration = {k: v for k, v in created.items() if k not in once_only}
    assert listed == [registration]
    assert cli.ok("registrations", "show", client_id, *store) == registration

    updated = cli.ok(
        *store,
        "registrations",
        "update",
        client_id,
        "--name",
        "Nightly backup",
        "--scope",
        "devices:read",
        "--customer-scope",
        "customers:c2,c1",
    )
    assert (updated["name"], updated["scopes"], updated["customer_scope"]) == (
        "Nightly backup",
        ["devices:read"],
        "customers:c1,c2",
    )
    assert updated["description"] == created["description"]
    assert cli.ok("registrations", "update", client_id, "--no-scopes", *store)["scopes"] == []

    rotated = cli.ok("registrations", "rotate-secret", client_id, "--secret-days", "730", *store)
    assert rotated["client_id"] == client_id
    assert rotated["client_secret"].startswith("eas_")
    assert rotated["client_secret"] != secret
    assert parse(rotated["secret_expires_at"]) == at(now_clock, 730)
    assert [s["id"] for s in rotated["secrets"]] == [rotated["secret_id"]]
    with EmbedAuth(stored_url, clock=now_clock) as auth:
        assert auth.clients.check_secret(client_id, secret) is None
        assert auth.clients.check_secret(client_id, rotated["client_secret"]) is not None

    custom = at(now_clock, 100).replace(microsecond=0)
    second = cli.ok("registrations", "add-secret", client_id, "--secret-expires", custom.isoformat(), *store)
    assert parse(second["secret_expires_at"]) == custom
    assert [s["id"] for s in second["secrets"]] == [rotated["secret_id"], second["secret_id"]]
    too_many = cli("registrations", "add-secret", client_id, *store)
    assert too_many.code == 1
    assert too_many.err.startswith("embedauth: error:")
    remaining = cli.ok("registrations", "delete-secret", client_id, rotated["secret_id"], *store)
    assert [s["id"] for s in remaining["secrets"]] == [second["secret_id"]]
    with EmbedAuth(stored_url, clock=now_clock) as auth:
        assert auth.clients.check_secret(client_id, rotated["client_secret"]) is None
        assert auth.clients.check_secret(client_id, second["client_secret"]) is not None

    pem = tmp_path / "client.pem"
    pem.write_bytes(certificate_pem(now_clock)[0])
    with_cert = cli.ok("registrations", "add-certificate", client_id, "--certificate", str(pem), *store)
    new_cert = with_cert["certificate"]
    assert new_cert["key_type"] == "EC P-256"
    assert new_cert["subject"] == "CN=cli-test"
    assert with_cert["client_id"] == client_id
    assert with_cert["certificates"] == [new_cert]
    # "--" ends the options: a base64url thumbprint starts with "-" one time in 64
    removed = cli(
        "registrations", "remove-certificate", client_id, *store, "--json", "--", new_cert["thumbprint"]
    )
    assert (removed.code, removed.err) == (0, "")
    assert json.loads(removed.out)["certificates"] == []

    assert cli.ok("registrations", "disable", client_id, *store)["enabled"] is False
    assert cli.ok("registrations", "show", client_id, *store)["enabled"] is False
    assert cli.ok("registrations", "enable", client_id, *store)["enabled"] is True

    renewed = cli.ok("registrations", "renew", client_id, "--days", "30", *store)
    assert parse(renewed["registration_expires_at"]) == at(now_clock, 30)
    assert parse(renewed["expires_at"]) == at(now_clock, 30)

    assert cli.ok("registrations", "delete", client_id, *store) == {"deleted": [client_id], "not_found": []}
    assert cli("registrations", "show", client_id, *store).code == 1
    assert cli.ok("registrations", "list", "--tenant", "site-1", *store) == []


def test_refresh_token_lifecycle(stored_url: str, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", stored_url)
    user = "alice@example.com"
    cli.ok(*store, "permissions", "add", "devices:read")
    cli.ok(*store, "permissions", "add", "devices:write", "--access", "write")

    created = cli.ok(
        *store, "refresh-tokens", "create", "--user", user, "--scope", "devices:read", "--tenant", "site-1"
    )
    token_id, token = created["id"], created["refresh_token"]
    assert token.startswith(f"ear_{token_id}")
    view = {
        "id": token_id,
        "user": user,
        "tenant": "site-1",
        "scopes": ["devices:read"],
        "hint": token[:7],
        "created_at": at(now_clock).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "last_used_at": None,
        "revoked_at": None,
    }
    assert created == view | {"refresh_token": token}

    # listed without the value, in either form
    assert cli.ok("refresh-tokens", "list", "--user", user, *store) == [view]
    for extra in ((), ("--json",)):
        listed = cli("refresh-tokens", "list", "--user", user, *store, *extra)
        assert (listed.code, listed.err) == (0, "")
        assert token_id in listed.out
        assert token not in listed.out
    assert cli.ok("refresh-tokens", "list", "--user", "bob", *store) == []

    now_clock.advance(60)
    with EmbedAuth(
        stored_url, clock=now_clock, key_encryption_key=TEST_SETTINGS["key_encryption_key"]
    ) as auth:
        response = auth.tokens.refresh(token)
        assert response.scope == "devices:read"
        assert response.refresh_token == token
        principal = auth.verify(response.access_token)
        assert (principal.subject, principal.tenant, principal.scopes) == (
            user,
            "site-1",
            frozenset({"devices:read"}),
        )
    used = cli.ok("refresh-tokens", "list", "--user", user, *store)[0]
    assert parse(used["last_used_at"]) == at(now_clock)

    revoked = cli.ok("refresh-tokens", "revoke", token_id, *store)
    assert revoked == used | {"revoked_at": revoked["revoked_at"]}
    assert parse(revoked["revoked_at"]) == at(now_clock)
    assert cli.ok("refresh-tokens", "revoke", token_id, *store) == revoked  # idempotent
    assert cli.ok("refresh-tokens", "list", "--user", user, *store) == [revoked]
    with EmbedAuth(stored_url, clock=now_clock) as auth:
        with pytest.raises(InvalidGrant):
            auth.tokens.refresh(token)
        with pytest.raises(InvalidToken):  # and the access token it produced
            auth.verify(response.access_token)


def test_key_rotation(stored_url: str, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", stored_url)
    assert cli.ok("keys", "list", *store) == []

    first = cli.ok("keys", "rotate", *store)
    assert set(first) == KEY_FIELDS | {"signs_from"}
    assert first["alg"] == "ES256"
    assert parse(first["signs_from"]) == parse(first["activates_at"]) == at(now_clock)  # no key signed yet
    second = cli.ok("keys", "rotate", "--algorithm", "RS256", *store)
    assert second["alg"] == "RS256"
    signs_from = parse(second["signs_from"])
    assert signs_from == parse(second["activates_at"]) == at(now_clock) + timedelta(seconds=600)
    assert (second["retires_at"], second["expires_at"]) == (None, None)

    listed = cli.ok("keys", "list", *store)
    assert [k["kid"] for k in listed] == [first["kid"], second["kid"]]
    for key in listed:
        assert set(key) == KEY_FIELDS
        assert not any("private" in name or name == "d" for name in key)
    previous = listed[0]
    assert parse(previous["retires_at"]) == signs_from
    assert parse(previous["expires_at"]) == signs_from + timedelta(seconds=3600 + 30)
    text = cli("keys", "list", *store)
    assert '"d"' not in text.out
    assert "private" not in text.out.lower()
    with EmbedAuth(stored_url, clock=now_clock) as auth:
        assert {k["kid"] for k in auth.jwks()["keys"]} == {first["kid"], second["kid"]}


def test_console_script_uses_embedauth_storage(tmp_path: Path) -> None:
    """The installed command and ``python -m embedauth.cli``, with storage from the environment only."""
    env = {**os.environ, "EMBEDAUTH_STORAGE": sqlite_url(tmp_path)}
    module = [sys.executable, "-m", "embedauth.cli"]
    script = [str(Path(sys.executable).with_name("embedauth"))]

    def run(command: list[str], *argv: str) -> str:
        done = subprocess.run(
            [*command, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stderr) == (0, "")
        return done.stdout

    run(module, "permissions", "add", "devices:read")
    created = json.loads(
        run(
            module,
            "registrations",
            "create",
            "--tenant",
            "site-1",
            "--name",
            "Backup",
            "--scope",
            "devices:read",
            "--json",
        )
    )
    listed = json.loads(run(script, "registrations", "list", "--tenant", "site-1", "--json"))
    assert [r["client_id"] for r in listed] == [created["client_id"]]
    table = run(script, "registrations", "list", "--tenant", "site-1")
    assert created["client_id"] in table
    assert "in 365 days" in table
    assert (tmp_path / "cli.db").exists()
    assert not (tmp_path / "embedauth.db").exists()


# ---------------------------------------------------------------------- bad input, nothing stored


@dataclass(frozen=True)
class Seeded:
    url: str
    client_id: str
    files: dict[str, str]


@pytest.fixture
def seeded(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> Seeded:
    """SQLite with two permissions, one registration and one refresh token holding ``devices:read``."""
    url = sqlite_url(tmp_path)
    cli.ok("permissions", "add", "devices:read", "--storage", url)
    cli.ok("permissions", "add", "devices:write", "--access", "write", "--storage", url)
    created = cli.ok(
        "registrations",
        "create",
        "--tenant",
        "site-1",
        "--name",
        "Seed",
        "--scope",
        "devices:read",
        "--storage",
        url,
    )
    cli.ok("refresh-tokens", "create", "--user", "user-1", "--scope", "devices:read", "--storage", url)
    cert, key = certificate_pem(now_clock)
    files = {"certificate": cert, "garbage": b"this is not a certificate\n", "private_key": key}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    paths = {name: str(tmp_path / f"{name}.pem") for name in files}
    return Seeded(url, created["client_id"], paths | {"missing": str(tmp_path / "missing.pem")})


def stored_state(url: str, clock: FrozenClock) -> tuple[object, ...]:
    with EmbedAuth(url, clock=clock) as auth:
        return (
            auth.permissions.list(),
            list(auth.registrations.list("site-1", limit=500).items),
            auth.storage.revocations_after(0),
            auth.refresh_tokens.list("user-1"),
            auth.storage.list_signing_keys(),
        )


CREATE = ("registrations", "create", "--tenant", "site-1", "--name", "New")

BAD_INPUT = [
    pytest.param([*CREATE, "--scope", "nope:read"], 1, id="create-unknown-permission"),
    pytest.param([*CREATE, "--scope", "devices:read nope:read"], 1, id="create-one-unknown-permission"),
    pytest.param(
        ["registrations", "create", "--tenant", "bad tenant", "--name", "X"], 1, id="create-bad-tenant"
    ),
    pytest.param(["registrations", "create", "--tenant", "site-1", "--name", ""], 1, id="create-empty-name"),
    pytest.param([*CREATE, "--secret-days", "100"], 1, id="create-secret-days-100"),
    pytest.param([*CREATE, "--secret-expires", "2020-01-01"], 1, id="create-past-secret-expires"),
    pytest.param([*CREATE, "--secret-expires", "2099-01-01"], 1, id="create-secret-expires-beyond-max"),
    pytest.param([*CREATE, "--expires", "2099-01-01T00:00:00Z"], 1, id="create-expires-beyond-max"),
    pytest.param([*CREATE, "--customer-scope", "people:1"], 1, id="create-bad-customer-scope"),
    pytest.param([*CREATE, "--expires", "tomorrow"], 2, id="create-malformed-date"),
    pytest.param(
        [*CREATE, "--secret-days", "365", "--secret-expires", "2027-01-01"], 2, id="create-days-and-date"
    ),
    pytest.param([*CREATE, "--secret-days", "a year"], 2, id="create-days-not-a-number"),
    pytest.param(["registrations", "create", "--name", "X"], 2, id="create-missing-tenant"),
    pytest.param(["registrations", "list", "--tenant", "bad tenant"], 1, id="list-bad-tenant"),
    pytest.param(["registrations", "list", "--tenant", "site-1", "--limit", "0"], 1, id="list-limit-0"),
    pytest.param(["registrations", "show", UNKNOWN_CLIENT], 1, id="show-unknown"),
    pytest.param(["registrations", "rotate-secret", UNKNOWN_CLIENT], 1, id="rotate-unknown"),
    pytest.param(["registrations", "add-secret", UNKNOWN_CLIENT], 1, id="add-secret-unknown"),
    pytest.param(["registrations", "disable", UNKNOWN_CLIENT], 1, id="disable-unknown"),
    pytest.param(["registrations", "enable", UNKNOWN_CLIENT], 1, id="enable-unknown"),
    pytest.param(["registrations", "delete", UNKNOWN_CLIENT], 1, id="delete-unknown"),
    pytest.param(["registrations", "renew", UNKNOWN_CLIENT, "--days", "30"], 1, id="renew-unknown"),
    pytest.param(["registrations", "renew", "{cid}", "--days", "0"], 1, id="renew-zero-days"),
    pytest.param(["registrations", "renew", "{cid}", "--expires", "2020-01-01"], 1, id="renew-past"),
    pytest.param(["registrations", "renew", "{cid}"], 2, id="renew-neither-days-nor-date"),
    pytest.param(
        ["registrations", "add-certificate", UNKNOWN_CLIENT, "--certificate", "{certificate}"],
        1,
        id="add-certificate-unknown-client",
    ),
    pytest.param(
        ["registrations", "add-certificate", "{cid}", "--certificate", "{garbage}"], 1, id="cert-garbage"
    ),
    pytest.param(
        ["registrations", "add-certificate", "{cid}", "--certificate", "{missing}"], 1, id="cert-missing"
    ),
    pytest.param(
        ["registrations", "add-certificate", "{cid}", "--certificate", "{private_key}"],
        1,
        id="cert-private-key",
    ),
    pytest.param(["registrations", "add-certificate", "{cid}"], 2, id="cert-no-file-given"),
    pytest.param(
        ["registrations", "remove-certificate", "{cid}", "nope"], 1, id="remove-certificate-unknown"
    ),
    pytest.param(["registrations", "delete-secret", "{cid}", "nope"], 1, id="delete-secret-unknown"),
    pytest.param(["registrations", "update", "{cid}"], 1, id="update-nothing"),
    pytest.param(
        ["registrations", "update", "{cid}", "--scope", "nope:read"], 1, id="update-unknown-permission"
    ),
    pytest.param(["registrations", "update", "{cid}", "--name", ""], 1, id="update-empty-name"),
    pytest.param(["registrations", "update", UNKNOWN_CLIENT, "--name", "X"], 1, id="update-unknown"),
    pytest.param(
        ["registrations", "update", "{cid}", "--scope", "devices:read", "--no-scopes"], 2, id="update-both"
    ),
    pytest.param(["permissions", "remove", "devices:read"], 1, id="permission-in-use"),
    pytest.param(["permissions", "remove", "nope:read"], 1, id="permission-remove-unknown"),
    pytest.param(["permissions", "add", "devices:read"], 1, id="permission-duplicate"),
    pytest.param(["permissions", "add", "bad name"], 1, id="permission-bad-name"),
    pytest.param(["permissions", "add", "things:read", "--access", "admin"], 2, id="permission-access-admin"),
    pytest.param(["permissions", "list", "--storage", "nope://x"], 1, id="unknown-storage-scheme"),
    pytest.param(
        ["refresh-tokens", "create", "--user", "user-1", "--scope", "nope:read"],
        1,
        id="refresh-token-unknown-permission",
    ),
    pytest.param(["refresh-tokens", "create", "--user", "bad user"], 1, id="refresh-token-bad-user"),
    pytest.param(
        ["refresh-tokens", "create", "--user", "user-1", "--tenant", "bad tenant"],
        1,
        id="refresh-token-bad-tenant",
    ),
    pytest.param(["refresh-tokens", "create"], 2, id="refresh-token-no-user"),
    pytest.param(["refresh-tokens", "list", "--user", "bad user"], 1, id="refresh-tokens-list-bad-user"),
    pytest.param(["refresh-tokens", "revoke", UNKNOWN_TOKEN], 1, id="refresh-token-revoke-unknown"),
    pytest.param(["refresh-tokens", "revoke", "not an id"], 1, id="refresh-token-revoke-malformed"),
    pytest.param(["refresh-tokens", "revoke"], 2, id="refresh-token-revoke-no-id"),
    pytest.param(["keys", "rotate", "--algorithm", "HS512"], 2, id="keys-rotate-hs512"),
    pytest.param(["keys", "rotate", "--algorithm", "HS256"], 2, id="keys-rotate-hs256"),
    pytest.param([], 2, id="no-group"),
    pytest.param(["registrations"], 2, id="no-verb"),
    pytest.param(["registrations", "frob"], 2, id="unknown-verb"),
]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("argv", "code"), BAD_INPUT)
def test_bad_input_is_one_line_and_stores_nothing(
    seeded: Seeded, cli: Cli, now_clock: FrozenClock, argv: list[str], code: int, as_json: bool
) -> None:
    before = stored_state(seeded.url, now_clock)
    values = {"cid": seeded.client_id, **seeded.files}
    # --storage before GROUP, so that a case's own --storage after VERB overrides it
    run = cli("--storage", seeded.url, *(a.format(**values) for a in argv), *(["--json"] if as_json else []))
    assert run.code == code
    if as_json and argv[:2] == ["registrations", "delete"]:  # says what it did, even if nothing
        assert json.loads(run.out) == {"deleted": [], "not_found": argv[2:]}
    else:
        assert run.out == ""
    if as_json:  # one JSON object on stderr, saying what and of which kind
        [line] = run.err.splitlines()
        error = json.loads(line)
        assert set(error) == {"error", "type"} and error["error"]
        assert (error["type"] == "UsageError") == (code == 2)
    else:
        errors = [line for line in run.err.splitlines() if line.startswith("embedauth: error:")]
        assert len(errors) == 1
        assert run.err.splitlines()[-1] == errors[0]
        if code == 1:
            assert run.err == errors[0] + "\n"
    assert stored_state(seeded.url, now_clock) == before


def test_delete_reports_the_missing_after_deleting_the_rest(seeded: Seeded, cli: Cli) -> None:
    run = cli("registrations", "delete", seeded.client_id, "nope", "--storage", seeded.url, "--json")
    assert run.code == 1
    assert json.loads(run.out) == {"deleted": [seeded.client_id], "not_found": ["nope"]}
    assert run.err.count("\n") == 1
    assert json.loads(run.err) == {
        "error": "no registration with client ID 'nope'",
        "type": "RegistrationNotFound",
    }
    assert cli.ok("registrations", "list", "--tenant", "site-1", "--storage", seeded.url) == []


# ---------------------------------------------------------------------- permissions, keys and dates


def test_permissions(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    assert cli("permissions", "list", *store).out == "No permissions.\n"
    assert cli.ok("permissions", "list", *store) == []
    cli.ok("permissions", "add", "devices:read", "--description", "List devices", *store)
    again = cli.ok("permissions", "add", "devices:read", "--description", "other", "--if-missing", *store)
    assert again["description"] == "List devices"
    fresh = cli.ok("permissions", "add", "sites:write", "--access", "write", "--if-missing", *store)
    assert (fresh["name"], fresh["access"]) == ("sites:write", "write")
    assert [p["name"] for p in cli.ok("permissions", "list", "--contains", "devices", *store)] == [
        "devices:read"
    ]
    table = cli("permissions", "list", *store).out.splitlines()
    assert table[0].split() == ["NAME", "ACCESS", "DESCRIPTION"]
    assert table[1].split() == ["devices:read", "read", "List", "devices"]
    assert cli.ok("permissions", "remove", "sites:write", *store) == {"removed": "sites:write"}
    assert cli("permissions", "remove", "devices:read", *store).out == "Removed permission devices:read.\n"
    assert cli.ok("permissions", "list", *store) == []


def test_keys_rotate_refuses_an_unconfigured_algorithm(
    tmp_path: Path, cli: Cli, now_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before anything changes: the key signing now is not retired without a successor."""
    url = sqlite_url(tmp_path)
    cli.ok("keys", "rotate", "--storage", url)
    before = stored_state(url, now_clock)
    monkeypatch.setenv("EMBEDAUTH_ALGORITHMS", "RS256")
    monkeypatch.setenv("EMBEDAUTH_SIGNING_ALGORITHM", "RS256")
    run = cli("keys", "rotate", "--algorithm", "ES256", "--storage", url)
    assert (run.code, run.out) == (1, "")
    assert run.err == "embedauth: error: algorithm ES256 is not in the configured algorithms (RS256)\n"
    assert stored_state(url, now_clock) == before


@pytest.mark.parametrize(
    ("given", "expected_time"),
    [
        pytest.param("{date}", "00:00:00", id="date-only"),
        pytest.param("{date}T12:30:00Z", "12:30:00", id="zulu"),
        pytest.param("{date}T12:30:00", "12:30:00", id="naive-is-utc"),
        pytest.param("{date}T14:30:00+02:00", "12:30:00", id="offset"),
    ],
)
def test_dates(tmp_path: Path, cli: Cli, now_clock: FrozenClock, given: str, expected_time: str) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    date = at(now_clock, 100).date().isoformat()
    value = given.format(date=date)
    created = cli.ok(*CREATE, "--secret-expires", value, "--expires", value, *store)
    assert created["secret_expires_at"] == f"{date}T{expected_time}.000Z"
    assert created["registration_expires_at"] == f"{date}T{expected_time}.000Z"


def test_update_with_repeated_scopes_and_description(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    for name in ("a:read", "b:read", "c:read"):
        cli.ok("permissions", "add", name, *store)
    created = cli.ok(*CREATE, "--scope", "c:read", "--description", "kept", *store)
    updated = cli.ok(
        "registrations", "update", created["client_id"], "--scope", "b:read", "--scope", "a:read", *store
    )
    assert updated["scopes"] == ["a:read", "b:read"]
    assert (updated["name"], updated["description"]) == ("New", "kept")
    described = cli.ok("registrations", "update", created["client_id"], "--description", "changed", *store)
    assert (described["description"], described["scopes"]) == ("changed", ["a:read", "b:read"])


@given(st.text(max_size=40))
def test_dates_parse_or_are_refused_cleanly(text: str) -> None:
    """The --expires/--secret-expires parser: an aware UTC datetime, or argparse's own error."""
    try:
        moment = cli_module._moment(text)
    except argparse.ArgumentTypeError:
        return
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def test_every_tenant_and_key_withdrawal(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    first = cli.ok("registrations", "create", "--tenant", "site-1", "--name", "A", *store)
    now_clock.advance(1)
    second = cli.ok("registrations", "create", "--tenant", "site-2", "--name", "B", *store)
    everyone = cli.ok("registrations", "list", *store)  # no --tenant: every tenant's, for a nightly job
    assert [(r["client_id"], r["tenant"]) for r in everyone] == [
        (first["client_id"], "site-1"),
        (second["client_id"], "site-2"),
    ]
    lines = cli("registrations", "list", *store).out.splitlines()
    assert re.split(r"\s{2,}", lines[0])[:2] == ["TENANT", "NAME"]
    assert [r["client_id"] for r in cli.ok("registrations", "list", "--tenant", "site-2", *store)] == [
        second["client_id"]
    ]
    key = cli.ok("keys", "rotate", *store)
    withdrawn = cli.ok("keys", "withdraw", key["kid"], *store)
    assert (withdrawn["kid"], withdrawn["withdrawn"]) == (key["kid"], True)
    assert key["kid"] not in [k["kid"] for k in cli.ok("keys", "list", *store)]
    missing = cli("keys", "withdraw", "no-such-kid", *store)
    assert (missing.code, missing.err) == (1, "embedauth: error: no signing key 'no-such-kid'\n")
    kek = cli.ok("keys", "generate-kek", *store)["key_encryption_key"]
    assert len(base64.urlsafe_b64decode(kek + "=")) == 32
    assert cli("keys", "generate-kek", *store).out.strip() != kek  # a new one each time


# ---------------------------------------------------------------------- what a newcomer meets


def test_every_option_and_argument_has_a_help_text() -> None:
    from embedauth.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif not action.help and action.dest != "help":
                yield f"{path} {'/'.join(action.option_strings) or action.dest}"

    assert list(walk(build_parser(), "embedauth")) == []


def test_version(cli: Cli) -> None:
    import embedauth

    run = cli("--version")
    assert (run.code, run.out.strip()) == (0, f"embedauth {embedauth.__version__}")


def test_create_says_everything_it_made(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    cli.ok("permissions", "add", "devices:read", *store)
    out = cli(
        "registrations",
        "create",
        "--tenant",
        "site-1",
        "--name",
        "Job",
        "--scope",
        "devices:read",
        "--customer-scope",
        "groups:g1",
        "--expires",
        "2030-01-01",
        "--disabled",
        *store,
    ).out
    fields = dict(line.split(":", 1) for line in out.splitlines() if ": " in line)
    assert fields["Scopes"].strip() == "devices:read"
    assert fields["Customer scope"].strip() == "groups:g1"
    assert fields["Enabled"].strip().startswith("no")
    assert fields["Registration's own expiry"].strip().startswith("2030-01-01")
    assert fields["Client secret"].strip().startswith("eas_")


def test_show_says_when_and_why_it_stops_working(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    made = cli.ok("registrations", "create", "--tenant", "t", "--name", "n", "--secret-days", "365", *store)
    renewed = cli("registrations", "renew", made["client_id"], "--days", "3000", *store).out
    assert "Stops working:" in renewed and "its last credential expires" in renewed  # not the renewal
    cli.ok("registrations", "delete-secret", made["client_id"], made["secret_id"], *store)
    shown = cli("registrations", "show", made["client_id"], *store).out
    assert re.search(r"Stops working: +now: it has no secret or certificate left", shown)
    assert cli.ok("registrations", "show", made["client_id"], *store)["expires_at"] == made["created_at"]


def test_a_held_permission_names_its_holders(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    cli.ok("permissions", "add", "devices:read", *store)
    made = cli.ok(
        "registrations", "create", "--tenant", "t", "--name", "Nightly", "--scope", "devices:read", *store
    )
    refused = cli("permissions", "remove", "devices:read", *store)
    assert refused.code == 1
    assert f"{made['client_id']} (Nightly, tenant t)" in refused.err


def test_list_all_pages_through(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    with EmbedAuth(store[1], clock=now_clock, **TEST_SETTINGS) as auth:
        made = []
        for i in range(1203):
            made.append(auth.registrations.create(tenant=f"t{i % 3}", name=f"r{i}").client_id)
            now_clock.advance(0.01)
    listed = cli.ok("registrations", "list", "--all", *store)
    assert [r["client_id"] for r in listed] == made
    page = cli("registrations", "list", "--offset", "50", *store, "--json")
    assert page.code == 0 and len(json.loads(page.out)) == 50  # a page, without --all...
    assert page.err == "embedauth: 51-100 of 1203 shown; --all for every one\n"  # ...that says so
    assert len(cli.ok("registrations", "list", "--tenant", "t0", "--all", *store)) == 401


def test_a_missing_extra_says_which_to_install(monkeypatch: pytest.MonkeyPatch, clock: Any) -> None:
    from embedauth.errors import ConfigurationError
    from embedauth.hooks import make_plugin_manager
    from embedauth.storage import open_storage

    monkeypatch.setitem(sys.modules, "redis", None)  # as if embedauth[redis] was not installed
    monkeypatch.delitem(sys.modules, "embedauth.storage.redis", raising=False)
    with pytest.raises(ConfigurationError, match=r"pip install 'embedauth\[redis\]'"):
        open_storage("redis://127.0.0.1:6379/0", clock=clock, plugins=make_plugin_manager())


def test_tenant_bound_verbs_do_not_reach_another_tenant(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    mine = cli.ok("registrations", "create", "--tenant", "site-1", "--name", "Mine", *store)
    theirs = cli.ok("registrations", "create", "--tenant", "site-2", "--name", "Theirs", *store)
    for verb in ("show", "disable", "rotate-secret", "delete"):
        refused = cli("registrations", verb, theirs["client_id"], "--tenant", "site-1", *store)
        assert refused.code == 1 and f"no registration with client ID '{theirs['client_id']}'" in refused.err
    both = cli(
        "registrations",
        "delete",
        mine["client_id"],
        theirs["client_id"],
        "--tenant",
        "site-1",
        *store,
        "--json",
    )
    assert both.code == 1
    assert json.loads(both.out) == {"deleted": [mine["client_id"]], "not_found": [theirs["client_id"]]}
    kept = cli.ok("registrations", "show", theirs["client_id"], *store)
    assert kept["enabled"] is True and [s["id"] for s in kept["secrets"]] == [theirs["secret_id"]]


def test_list_sorts_and_finds_what_expires_soon(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    for name, days in (("bravo", 730), ("Alpha", 365), ("charlie", 1095)):
        cli.ok("registrations", "create", "--tenant", "t", "--name", name, "--secret-days", str(days), *store)
        now_clock.advance(1)

    def names(*extra: str) -> list[str]:
        return [r["name"] for r in cli.ok("registrations", "list", *extra, *store)]

    assert names("--sort", "name") == ["Alpha", "bravo", "charlie"]
    assert names("--sort", "expires_at", "--desc") == ["charlie", "bravo", "Alpha"]
    assert names("--desc") == ["charlie", "Alpha", "bravo"]
    assert names("--expiring-within", "400") == ["Alpha"]
    assert cli("registrations", "list", "--sort", "secret", *store).code == 2  # argparse's usage error


def test_rotate_with_grace_audit_and_notify(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    """``rotate-secret --grace``, ``audit`` (every change the command made, as cli:USER) and
    ``notify`` (the notices due, once)."""
    store = ("--storage", sqlite_url(tmp_path))
    cli.ok("permissions", "add", "devices:read", *store)
    made = cli.ok(
        "registrations", "create", "--tenant", "site-1", "--name", "Fleet",
        "--secret-expires", at(now_clock, 5).isoformat(), *store,
    )  # fmt: skip
    rotated = cli.ok("registrations", "rotate-secret", made["client_id"], "--grace", "24h", *store)
    old = next(s for s in rotated["secrets"] if s["id"] == made["secret_id"])
    assert old["replaced_at"] is not None and old["expires_at"] == isoformat(at(now_clock, 1))
    shown = cli("registrations", "show", made["client_id"], *store).out
    assert "(replaced " in shown and "never used" in shown
    bad = cli("registrations", "rotate-secret", made["client_id"], "--grace", "soon", *store)
    assert bad.code == 2 and "not a duration" in bad.err
    records = cli.ok("audit", "--client-id", made["client_id"], *store)
    assert sorted(r["action"] for r in records) == ["registration.create", "registration.rotate_secret"]
    assert {(r["actor"].split(":")[0], r["source"]) for r in records} == {("cli", "cli")}
    assert cli.ok("audit", "--tenant", "site-2", *store) == []
    assert cli.ok("audit", "--since", at(now_clock, 1).isoformat(), *store) == []
    assert "permission.add" in cli("audit", *store).out
    swept = cli.ok("notify", *store)
    # The old secret was replaced (its end chosen), the new one lasts a year: nothing is due.
    assert swept["notices"] == [] and swept["registrations_checked"] == 1
    late = cli.ok(
        "registrations", "create", "--tenant", "site-1", "--name", "Late",
        "--secret-expires", at(now_clock, 3).isoformat(), *store,
    )  # fmt: skip
    text = cli("notify", *store).out
    assert f"site-1  {late['client_id']}  Late: secret {late['secret_id']} expires in 3 days" in text
    assert cli.ok("notify", *store)["notices"] == []  # once
    notices = [
        r
        for r in cli.ok("audit", "--client-id", late["client_id"], *store)
        if r["action"] == "notice.expiring"
    ]
    assert [(r["actor"], r["detail"]["days_left"]) for r in notices] == [("embedauth:sweep", 3)]
