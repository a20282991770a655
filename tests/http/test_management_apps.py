"""The management API's apps and connections: the connect journey for two tenants (a permission
declined, pause and restore) over HTTP, isolation between developer and tenants, and the refusals."""

from __future__ import annotations

from typing import Any

from embedauth import Admin
from tests.http.test_management import Api, assert_problem

DEV = Admin("dana", frozenset({"dev-1"}))
ALICE = Admin("alice", frozenset({"site-1"}))
BOB = Admin("bob", frozenset({"site-2"}))


def new_app(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Backup service", "scopes": ["devices:read", "devices:write"]} | fields
    answer = api(DEV, "POST", "/apps", body)
    assert answer.status == 201, answer
    made: dict[str, Any] = answer.body
    return made


def test_the_connect_journey_over_http(api: Api) -> None:
    app = new_app(api, description="Backs up devices")
    assert app["owner"] == "dev-1" and app["allowed_tenants"] is None
    assert api(DEV, "GET", "/apps").body == {"items": [app]}

    offered = api(ALICE, "GET", "/connectable-apps").body["items"]
    assert [(o["app_id"], o["connected"]) for o in offered] == [(app["app_id"], [])]
    assert [(p["name"], p["access"]) for p in offered[0]["permissions"]] == [
        ("devices:read", "read"),
        ("devices:write", "write"),
    ]

    one = api(ALICE, "POST", f"/connectable-apps/{app['app_id']}/connect", {"scopes": ["devices:read"]})
    assert one.status == 201, one
    assert one.body["tenant"] == "site-1" and one.body["scopes"] == ["devices:read"]
    assert one.body["client_secret"].startswith("eas_") and one.body["app_id"] == app["app_id"]
    two = api(BOB, "POST", f"/connectable-apps/{app['app_id']}/connect", {})
    assert two.status == 201 and two.body["scopes"] == ["devices:read", "devices:write"]
    assert api(ALICE, "GET", "/connectable-apps").body["items"][0]["connected"] == ["site-1"]

    # Pause and restore site-1's connection: its registration.
    assert api(ALICE, "POST", f"/registrations/{one.body['client_id']}/disable", {}).status == 200
    seen = api(DEV, "GET", f"/apps/{app['app_id']}/connections").body["items"]
    assert [(c["tenant"], c["scopes"], c["enabled"]) for c in seen] == [
        ("site-1", ["devices:read"], False),
        ("site-2", ["devices:read", "devices:write"], True),
    ]
    assert all("secret" not in key for c in seen for key in c)
    assert api(ALICE, "POST", f"/registrations/{one.body['client_id']}/enable", {}).status == 200
    mine = api(ALICE, "GET", "/connections").body["items"]
    assert [(c["tenant"], c["enabled"]) for c in mine] == [("site-1", True)]

    # Connected once; a second connect is a conflict and leaves nothing behind.
    assert_problem(api(ALICE, "POST", f"/connectable-apps/{app['app_id']}/connect", {}), 409)
    assert api(ALICE, "GET", "/registrations").body["total"] == 1
    assert [a[1] for a in api.audit.actions if a[1].startswith("app.")] == [
        "app.create",
        "app.connect",
        "app.connect",
    ]


def test_tenants_cannot_reach_the_developers_app(api: Api) -> None:
    app = new_app(api)
    path = f"/apps/{app['app_id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "taken over"}),
        ("DELETE", "", None),
        ("GET", "/connections", None),
    ]:
        assert_problem(api(ALICE, method, path + suffix, body), 404)
    assert api(DEV, "GET", path).body["name"] == "Backup service"
    assert api(ALICE, "GET", "/apps").body == {"items": []}


def test_an_app_for_some_tenants_is_not_found_by_the_others(api: Api) -> None:
    app = new_app(api, allowed_tenants=["site-1"])
    assert api(BOB, "GET", "/connectable-apps").body == {"items": []}
    assert_problem(api(BOB, "POST", f"/connectable-apps/{app['app_id']}/connect", {}), 404)
    assert api(BOB, "GET", "/registrations").body["total"] == 0


def test_refusals_name_their_field(api: Api) -> None:
    app = new_app(api)
    declined = api(ALICE, "POST", f"/connectable-apps/{app['app_id']}/connect", {"scopes": ["users:read"]})
    assert assert_problem(declined, 422)["errors"] == [
        {"field": "scopes", "reason": "the app does not request users:read"}
    ]
    unknown = api(DEV, "POST", "/apps", {"name": "Ghost", "scopes": ["no:such"]})
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "scopes"
    elsewhere = api(DEV, "POST", "/apps", {"name": "Theirs", "owner": "site-1"})
    assert assert_problem(elsewhere, 422)["errors"][0]["field"] == "owner"
    assert_problem(api(DEV, "POST", "/apps", {"scopes": []}), 422)  # no name
    assert api(DEV, "GET", "/apps").body["items"] == [app]


def test_narrowing_and_deleting_the_app_reach_every_connection(api: Api) -> None:
    app = new_app(api)
    one = api(ALICE, "POST", f"/connectable-apps/{app['app_id']}/connect", {}).body
    narrowed = api(DEV, "PATCH", f"/apps/{app['app_id']}", {"scopes": ["devices:read"]})
    assert narrowed.status == 200 and narrowed.body["scopes"] == ["devices:read"]
    assert api(ALICE, "GET", f"/registrations/{one['client_id']}").body["scopes"] == ["devices:read"]
    assert api(DEV, "DELETE", f"/apps/{app['app_id']}").status == 204
    assert_problem(api(ALICE, "GET", f"/registrations/{one['client_id']}"), 404)
    assert api(ALICE, "GET", "/connections").body == {"items": []}


def test_a_secrets_lifetime_may_be_days_as_design_names_it(api: Api) -> None:
    """DESIGN.md's table: ``POST …/secrets`` takes ``days``; ``secret_days`` is the same."""
    made = api(ALICE, "POST", "/registrations", {"tenant": "site-1", "name": "Two secrets"}).body
    added = api(ALICE, "POST", f"/registrations/{made['client_id']}/secrets", {"days": 730})
    assert added.status == 201, added
    assert added.body["secret_expires_at"][:10] > made["secret_expires_at"][:10]
    both = api(
        ALICE, "POST", f"/registrations/{made['client_id']}/secrets", {"days": 365, "secret_days": 730}
    )
    assert assert_problem(both, 422)["errors"][0]["field"] == "days"
