"""The management API and the admin page under both adapters: the apps ``embedauth serve`` runs
(built-in bearer guard), one table of requests, the same status, headers and bytes from each."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from embedauth import EmbedAuth
from embedauth.cli.demo import flask_app, starlette_app
from embedauth.clock import FrozenClock
from embedauth.http.admin_page import CONTENT_SECURITY_POLICY
from embedauth.http.management import ADMIN_SCOPE, CATALOG_SCOPE, MAX_BODY_BYTES
from tests.adapters.apps import Client, FlaskClient, Reply, StarletteClient, open_auth

API = "/admin/api"
#: The headers both frameworks must send identically.
MATTERS = (
    "content-type",
    "cache-control",
    "www-authenticate",
    "allow",
    "retry-after",
    "location",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "content-length",
)
#: Members that differ between two runs: what each creation makes anew.
VOLATILE = {"client_id", "client_secret", "secret_id", "id", "hint"}


@dataclass(frozen=True)
class World:
    auth: EmbedAuth
    admin_token: str
    plain_token: str
    other_tenants: str
    """A registration of site-2 (the admin manages site-1)."""
    held: str
    """A registration of site-1 holding devices:read."""


@pytest.fixture
def world(clock: FrozenClock) -> Iterator[World]:
    with open_auth(clock) as auth:
        auth.permissions.add(ADMIN_SCOPE, access="write")
        auth.permissions.add(CATALOG_SCOPE, access="write")
        admin = auth.registrations.create(tenant="site-1", name="Admin", scopes=[ADMIN_SCOPE, CATALOG_SCOPE])
        plain = auth.registrations.create(tenant="site-1", name="Plain", scopes=["devices:read"])
        other = auth.registrations.create(tenant="site-2", name="Other", scopes=["devices:read"])

        def token(client_id: str, secret: str) -> str:
            return auth.tokens.client_credentials(client_id, secret).access_token

        yield World(
            auth,
            token(admin.client_id, admin.client_secret),
            token(plain.client_id, plain.client_secret),
            other.client_id,
            plain.client_id,
        )


@pytest.fixture
def clients(world: World) -> tuple[Client, Client]:
    return StarletteClient(starlette_app(world.auth)), FlaskClient(flask_app(world.auth))


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: Callable[[World], str]
    status: int
    body: bytes | None = None
    content_type: str | None = "application/json"
    token: Callable[[World], str | None] = lambda w: w.admin_token
    check: Callable[[Reply], None] | None = None


def _problem(status: int, field: str | None = None) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.headers["content-type"] == "application/problem+json"
        body = reply.json()
        assert body["status"] == status and body["type"] == "about:blank"
        if field is not None:
            assert field in [e["field"] for e in body["errors"]]

    return check


def _page(reply: Reply) -> None:
    assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert reply.headers["x-frame-options"] == "DENY"


NEW = json.dumps({"tenant": "site-1", "name": "Nightly", "scopes": ["devices:read"]}).encode()

CASES = [
    Case("session", "GET", lambda w: f"{API}/session", 200),
    Case("list", "GET", lambda w: f"{API}/registrations?sort=name", 200),
    Case("bad query", "GET", lambda w: f"{API}/registrations?limit=0", 422, check=_problem(422, "limit")),
    Case("create", "POST", lambda w: f"{API}/registrations", 201, NEW),
    Case(
        "create, not JSON",
        "POST",
        lambda w: f"{API}/registrations",
        415,
        NEW,
        "text/plain",
        check=_problem(415),
    ),
    Case("create, broken JSON", "POST", lambda w: f"{API}/registrations", 400, b"{", check=_problem(400)),
    Case(
        "create, refused fields",
        "POST",
        lambda w: f"{API}/registrations",
        422,
        b'{"tenant": "site-1", "name": ""}',
        check=_problem(422, "name"),
    ),
    Case(
        "another tenant's",
        "GET",
        lambda w: f"{API}/registrations/{w.other_tenants}",
        404,
        check=_problem(404),
    ),
    Case(
        "another tenant's, disable",
        "POST",
        lambda w: f"{API}/registrations/{w.other_tenants}/disable",
        404,
        b"{}",
        check=_problem(404),
    ),
    Case("audit", "GET", lambda w: f"{API}/audit?since=2100-01-01T00:00:00Z", 200),
    Case("audit, bad query", "GET", lambda w: f"{API}/audit?limit=0", 422, check=_problem(422, "limit")),
    Case(
        "another tenant's audit",
        "GET",
        lambda w: f"{API}/registrations/{w.other_tenants}/audit",
        404,
        check=_problem(404),
    ),
    Case("wrong method", "PUT", lambda w: f"{API}/registrations", 405, check=_problem(405)),
    Case("no token", "GET", lambda w: f"{API}/session", 401, token=lambda w: None, check=_problem(401)),
    Case("bad token", "GET", lambda w: f"{API}/session", 401, token=lambda w: "x.y.z", check=_problem(401)),
    Case(
        "not an admin",
        "GET",
        lambda w: f"{API}/session",
        403,
        token=lambda w: w.plain_token,
        check=_problem(403),
    ),
    Case("held permission", "DELETE", lambda w: f"{API}/permissions/devices:read", 409, check=_problem(409)),
    Case(
        "too large",
        "POST",
        lambda w: f"{API}/registrations",
        413,
        b"x" * (MAX_BODY_BYTES + 1),
        check=_problem(413),
    ),
    Case("the document", "GET", lambda w: f"{API}/openapi.json", 200, token=lambda w: None),
    Case("the prefix alone", "GET", lambda w: API, 404, check=_problem(404)),
    Case("the page without a slash", "GET", lambda w: "/admin", 308, token=lambda w: None, check=_page),
    Case("the page's config", "GET", lambda w: "/admin/config.json", 200, token=lambda w: None, check=_page),
    Case("the page's colours", "GET", lambda w: "/admin/theme.css", 200, token=lambda w: None, check=_page),
    Case("no such file", "GET", lambda w: "/admin/missing.js", 404, token=lambda w: None, check=_page),
    Case("not GET", "POST", lambda w: "/admin/config.json", 405, b"{}", token=lambda w: None, check=_page),
]


def _masked(body: bytes, content_type: str | None) -> Any:
    if not body or content_type is None or "json" not in content_type:
        return body

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "*" if k in VOLATILE else mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return mask(json.loads(body))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_both_adapters_answer_alike(world: World, clients: tuple[Client, Client], case: Case) -> None:
    answers = []
    for client in clients:
        headers = (
            [] if case.content_type is None or case.body is None else [("Content-Type", case.content_type)]
        )
        token = case.token(world)
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        reply = client.send(case.method, case.path(world), headers, case.body)
        assert reply.status == case.status, (client.name, reply.status, reply.body[:500])
        if case.check is not None:
            case.check(reply)
        answers.append(reply)
    starlette, flask = answers
    volatile = case.status == 201
    for name in MATTERS:
        if name == "content-length" and volatile:
            continue
        assert starlette.headers.get(name) == flask.headers.get(name), name
    if volatile:
        content_type = starlette.headers.get("content-type")
        assert _masked(starlette.body, content_type) == _masked(flask.body, content_type)
    else:
        assert starlette.body == flask.body


def test_a_tenant_admins_changes_reach_storage_through_either(
    world: World, clients: tuple[Client, Client]
) -> None:
    for client in clients:
        made = client.send(
            "POST",
            f"{API}/registrations",
            [("Content-Type", "application/json"), ("Authorization", f"Bearer {world.admin_token}")],
            NEW,
        )
        assert made.status == 201
        client_id = made.json()["client_id"]
        assert world.auth.registrations.get(client_id).tenant == "site-1"
        paused = client.send(
            "POST",
            f"{API}/registrations/{client_id}/disable",
            [("Content-Type", "application/json"), ("Authorization", f"Bearer {world.admin_token}")],
            b"",
        )
        assert paused.status == 200 and world.auth.registrations.get(client_id).enabled is False


def test_the_page_config_says_where_everything_is(clients: tuple[Client, Client]) -> None:
    for client in clients:
        config = client.send("GET", "/admin/config.json").json()
        assert config == {
            "product_name": "embedauth",
            "api": "/admin/api",
            "token_endpoint": "/oauth/token",
            "sign_in": "client_credentials",
            "secret_lifetime_days": [365, 730, 1095],
            "default_secret_days": 365,
            "max_rotation_grace": 604800,
        }
        css = client.send("GET", "/admin/theme.css")
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        assert css.body.startswith(b":root{--accent:#2563eb;")


def test_colours_and_product_name_come_from_the_settings(clock: FrozenClock) -> None:
    with open_auth(clock, admin_product_name="Acme Cloud", admin_colors=("accent=#ff0000",)) as auth:
        client = StarletteClient(starlette_app(auth))
        assert client.send("GET", "/admin/config.json").json()["product_name"] == "Acme Cloud"
        assert b"--accent:#ff0000;" in client.send("GET", "/admin/theme.css").body


def test_an_issuer_elsewhere_does_not_move_the_page(clock: FrozenClock) -> None:
    """The page calls the token endpoint by path: same origin, whatever the issuer's host is."""
    with open_auth(clock, issuer="https://auth.example.net/tenant-x") as auth:
        config = StarletteClient(starlette_app(auth)).send("GET", "/admin/config.json").json()
        assert config["token_endpoint"] == "/oauth/token"
