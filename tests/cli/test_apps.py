"""``embedauth apps``: define, connect for two tenants (one declining a permission), follow the
connections, narrow, delete; text and JSON on every backend."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_the_apps_verbs(stored_url: str, cli: Cli) -> None:
    store = ("--storage", stored_url)
    cli.ok(*store, "permissions", "add", "devices:read")
    cli.ok(*store, "permissions", "add", "devices:write", "--access", "write")
    app = cli.ok(
        *store, "apps", "create", "--owner", "dev-1", "--name", "Backup service",
        "--scope", "devices:read devices:write", "--allow-tenant", "site-1", "--allow-tenant", "site-2",
    )  # fmt: skip
    app_id = app["app_id"]
    assert (app["scopes"], app["allowed_tenants"]) == (
        ["devices:read", "devices:write"],
        ["site-1", "site-2"],
    )

    one = cli.ok(*store, "apps", "connect", app_id, "--tenant", "site-1", "--scope", "devices:read")
    assert one["tenant"] == "site-1" and one["scopes"] == ["devices:read"] and one["client_secret"]
    two = cli(*store, "apps", "connect", app_id, "--tenant", "site-2")
    assert two.code == 0 and "This secret is shown only once" in two.out
    refused = cli(*store, "apps", "connect", app_id, "--tenant", "site-3")
    assert (
        refused.code == 1
        and refused.err.startswith("embedauth: error:")
        and len(refused.err.splitlines()) == 1
    )

    links = cli.ok(*store, "apps", "connections", app_id)
    assert [(c["tenant"], c["scopes"], c["enabled"]) for c in links] == [
        ("site-1", ["devices:read"], True),
        ("site-2", ["devices:read", "devices:write"], True),
    ]
    assert all("secret" not in field for c in links for field in c)
    assert [c["tenant"] for c in cli.ok(*store, "apps", "connections", "--tenant", "site-2")] == ["site-2"]
    table = cli(*store, "apps", "connections").out
    assert "site-1" in table and "paused" not in table

    # Pause site-1's connection with the registration verbs: its registration.
    cli.ok(*store, "registrations", "disable", one["client_id"])
    assert [c["enabled"] for c in cli.ok(*store, "apps", "connections", app_id)] == [False, True]

    narrowed = cli.ok(*store, "apps", "update", app_id, "--scope", "devices:read", "--any-tenant")
    assert narrowed["scopes"] == ["devices:read"] and narrowed["allowed_tenants"] is None
    assert cli.ok(*store, "registrations", "show", one["client_id"])["scopes"] == ["devices:read"]
    assert [a["app_id"] for a in cli.ok(*store, "apps", "list", "--owner", "dev-1")] == [app_id]
    assert cli.ok(*store, "apps", "list", "--owner", "site-1") == []

    gone = cli.ok(*store, "apps", "delete", app_id)
    assert gone["deleted"] == app_id and len(gone["connections_deleted"]) == 2
    assert cli.ok(*store, "apps", "list") == []
    missing = cli(*store, "apps", "show", app_id)
    assert missing.code == 1 and "no app" in missing.err
