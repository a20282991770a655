"""How the ``embedauth`` command prints its results as text: tables, "in N days", and a secret or
refresh token shown exactly once."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from embedauth.clock import FrozenClock
from tests.cli.conftest import Cli, at, sqlite_url

SHOWN_ONCE = "This secret is shown only once; store it now."
TOKEN_SHOWN_ONCE = "This refresh token is shown only once; store it now."


def test_secret_is_printed_once(tmp_path: Path, cli: Cli) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    cli.ok("permissions", "add", "devices:read", *store)
    run = cli(
        "registrations", "create", "--tenant", "site-1", "--name", "Backup", "--scope", "devices:read", *store
    )
    assert (run.code, run.err) == (0, "")
    fields = dict(line.split(":", 1) for line in run.out.splitlines() if ": " in line)
    client_id, secret = fields["Client ID"].strip(), fields["Client secret"].strip()
    assert secret.startswith("eas_")
    assert run.out.rstrip().endswith(SHOWN_ONCE)
    for argv in (("registrations", "show", client_id), ("registrations", "list", "--tenant", "site-1")):
        for extra in ((), ("--json",)):
            later = cli(*argv, *store, *extra)
            assert later.code == 0
            assert client_id in later.out
            assert secret not in later.out
    assert secret[:7] in cli("registrations", "show", client_id, *store).out  # the hint, and no more
    rotated = cli("registrations", "rotate-secret", client_id, *store)
    assert client_id in rotated.out
    assert SHOWN_ONCE in rotated.out
    assert secret not in rotated.out


def test_refresh_token_is_printed_once(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    cli.ok("permissions", "add", "devices:read", *store)
    run = cli("refresh-tokens", "create", "--user", "alice", "--scope", "devices:read", *store)
    assert (run.code, run.err) == (0, "")
    fields = dict(line.split(":", 1) for line in run.out.splitlines() if ": " in line)
    token_id, token = fields["Refresh token ID"].strip(), fields["Refresh token"].strip()
    assert token.startswith(f"ear_{token_id}")
    assert fields["Scopes"].strip() == "devices:read"
    assert run.out.rstrip().endswith(TOKEN_SHOWN_ONCE)
    unlimited = cli.ok("refresh-tokens", "create", "--user", "alice", *store)
    assert unlimited["scopes"] == ["devices:read"]  # no --scope: the read permissions, said as such

    lines = cli("refresh-tokens", "list", "--user", "alice", *store).out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["ID", "HINT", "SCOPES", "CREATED", "LAST USED", "STATUS"]
    today = at(now_clock).date().isoformat()
    rows = {line.split()[0]: re.split(r"\s{2,}", line) for line in lines[1:]}
    assert rows[token_id] == [token_id, f"{token[:7]}...", "devices:read", today, "never", "active"]
    assert rows[unlimited["id"]][2:] == ["devices:read", today, "never", "active"]
    assert token not in "\n".join(lines)

    revoked = cli("refresh-tokens", "revoke", token_id, *store)
    assert (revoked.code, revoked.err) == (0, "")
    assert f"Revoked:          {at(now_clock).isoformat().replace('+00:00', 'Z')}" in revoked.out
    assert token not in revoked.out
    now_clock.advance(366 * 86400)  # unused past refresh_token_idle_days: refused at its next use
    later = {
        line.split()[0]: line
        for line in cli("refresh-tokens", "list", "--user", "alice", *store).out.splitlines()
    }
    assert later[token_id].endswith("  revoked")
    assert later[unlimited["id"]].endswith("  expired (idle)")
    assert cli("refresh-tokens", "list", "--user", "bob", *store).out == "No refresh tokens for bob.\n"


def test_keys_text(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    assert cli("keys", "list", *store).out == "No published signing keys.\n"
    now = at(now_clock).isoformat().replace("+00:00", "Z")
    first = cli("keys", "rotate", "--algorithm", "EdDSA", *store)
    assert (first.code, first.err) == (0, "")
    first_kid = first.out.split()[2]
    assert (
        first.out == f"New key {first_kid} published now; it signs from {now}; there was no previous key.\n"
    )
    second = cli("keys", "rotate", *store)
    second_kid = second.out.split()[2]
    signs_from = (at(now_clock) + timedelta(seconds=600)).isoformat().replace("+00:00", "Z")
    until = (at(now_clock) + timedelta(seconds=600 + 3630)).isoformat().replace("+00:00", "Z")
    assert second.out == (
        f"New key {second_kid} published now; it signs from {signs_from}; "
        f"the previous key stays published until {until}.\n"
    )
    lines = cli("keys", "list", *store).out.splitlines()
    assert [re.split(r"\s{2,}", line) for line in lines] == [
        ["KID", "ALG", "STATUS", "SIGNS FROM", "RETIRES", "PUBLISHED UNTIL"],
        [first_kid, "EdDSA", "signing", now, signs_from, until],
        [second_kid, "ES256", "next", signs_from, "-", "-"],
    ]
    now_clock.advance(600)
    statuses = [line.split()[2] for line in cli("keys", "list", *store).out.splitlines()[1:]]
    assert statuses == ["retired", "signing"]


def test_list_table(tmp_path: Path, cli: Cli, now_clock: FrozenClock) -> None:
    store = ("--storage", sqlite_url(tmp_path))
    first = cli.ok("registrations", "create", "--tenant", "site-1", "--name", "Backup script", *store)
    second = cli.ok(
        "registrations",
        "create",
        "--tenant",
        "site-1",
        "--name",
        "Paused",
        "--secret-days",
        "730",
        "--disabled",
        *store,
    )
    lines = cli("registrations", "list", "--tenant", "site-1", *store).out.splitlines()
    header = ["NAME", "CLIENT ID", "CREATED", "ENABLED", "LAST USED", "EXPIRES"]
    assert re.split(r"\s{2,}", lines[0]) == header
    today = at(now_clock).date().isoformat()
    rows = {line.split()[-7]: line for line in lines[1:]}
    assert re.split(r"\s{2,}", rows[first["client_id"]]) == [
        "Backup script",
        first["client_id"],
        today,
        "yes",
        "never",
        "in 365 days",
    ]
    assert re.split(r"\s{2,}", rows[second["client_id"]])[1:] == [
        second["client_id"],
        today,
        "no",
        "never",
        "in 730 days",
    ]
    assert len({line.index(cid) for cid, line in rows.items()}) == 1  # aligned columns
    now_clock.advance(400 * 86400)
    lines = cli("registrations", "list", "--tenant", "site-1", *store).out.splitlines()
    rows = {line.split()[-7 if line.endswith("days") else -5]: line for line in lines[1:]}
    assert rows[first["client_id"]].endswith("  expired")
    assert rows[second["client_id"]].endswith("  in 330 days")
    paged = cli("registrations", "list", "--tenant", "site-1", "--limit", "1", *store).out
    assert paged.splitlines()[-1] == "(1-1 of 2)"
    assert cli("registrations", "list", "--tenant", "site-2", *store).out == "No registrations.\n"
