"""One table of requests and the answers expected, run against the Starlette app and the Flask app that
``embedauth serve`` runs (:mod:`embedauth.service`), over the same :class:`EmbedAuth`: each framework
must give the expected status, headers and body, and the two must agree byte for byte (status, body,
and every header that matters)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from embedauth import EmbedAuth, StorageError
from embedauth.cli.demo import DEMO_DEVICES, flask_app, starlette_app
from embedauth.clock import FrozenClock
from embedauth.http.messages import MAX_FORM_BYTES
from embedauth.models import CreatedSecret
from tests.adapters.apps import (
    ISSUER,
    JSON,
    Client,
    FlaskClient,
    Reply,
    StarletteClient,
    basic,
    open_auth,
)
from tests.http.helpers import mistyped

FORM = "application/x-www-form-urlencoded"
#: The headers both frameworks must send identically (plus content-length, when the body is stable).
MATTERS = ("content-type", "cache-control", "pragma", "www-authenticate", "allow", "retry-after")
FAILED = "client authentication failed"
REALM = f'Bearer realm="{ISSUER}"'
BASIC_CHALLENGE = f'Basic realm="{ISSUER}"'


# ------------------------------------------------------------------------- the world both apps share


@dataclass(frozen=True)
class World:
    auth: EmbedAuth
    client: CreatedSecret
    """site-1, devices:read devices:write."""
    limited: CreatedSecret
    """site-1, users:read only."""
    stranger: CreatedSecret
    """site-2, devices:read."""
    paused: CreatedSecret
    """site-1, disabled after its token was issued."""
    token: str
    limited_token: str
    stranger_token: str
    paused_token: str
    refresh_token: str
    """A person's (alice, site-1, devices:read)."""


@pytest.fixture
def world(clock: FrozenClock) -> Iterator[World]:
    with open_auth(clock) as auth:
        registrations = auth.registrations
        client = registrations.create(
            tenant="site-1", name="Backup", scopes=["devices:read", "devices:write"]
        )
        limited = registrations.create(tenant="site-1", name="Users", scopes=["users:read"])
        stranger = registrations.create(tenant="site-2", name="Other", scopes=["devices:read"])
        paused = registrations.create(tenant="site-1", name="Paused", scopes=["devices:read"])

        def token(created: CreatedSecret) -> str:
            return auth.tokens.client_credentials(created.client_id, created.client_secret).access_token

        paused_token = token(paused)
        registrations.disable(paused.client_id)
        person = auth.refresh_tokens.create("alice", scopes=["devices:read"], tenant="site-1")
        yield World(
            auth=auth,
            client=client,
            limited=limited,
            stranger=stranger,
            paused=paused,
            token=token(client),
            limited_token=token(limited),
            stranger_token=token(stranger),
            paused_token=paused_token,
            refresh_token=person.refresh_token,
        )


@pytest.fixture
def clients(world: World) -> tuple[Client, Client]:
    return StarletteClient(starlette_app(world.auth)), FlaskClient(flask_app(world.auth))


# ------------------------------------------------------------------------- the table

Pairs = Sequence[tuple[str, str]]
BodyCheck = Mapping[str, Any] | Callable[[World, Any], bool] | None


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    headers: Mapping[str, str | None]
    """Expected values of every header in MATTERS (None: absent)."""
    body: BodyCheck
    """The exact JSON, a predicate on (world, JSON), or None for no body at all."""
    form: Callable[[World], Pairs] | None = None
    raw: Callable[[World], bytes] | None = None
    content_type: str | None = FORM
    authorization: Callable[[World], str] | None = None
    volatile: tuple[str, ...] = ()
    """Body members whose values differ between two runs (fresh tokens)."""
    extra_headers: Pairs = field(default=())

    def request(self, world: World) -> tuple[list[tuple[str, str]], bytes | None]:
        headers = list(self.extra_headers)
        if self.authorization is not None:
            headers.append(("Authorization", self.authorization(world)))
        body = None
        if self.form is not None:
            body = urlencode(self.form(world)).encode()
        elif self.raw is not None:
            body = self.raw(world)
        if body is not None and self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        return headers, body


def expect(**headers: str | None) -> dict[str, str | None]:
    """Every header in MATTERS absent except those given (underscores for dashes)."""
    given = {name.replace("_", "-"): value for name, value in headers.items()}
    assert set(given) <= set(MATTERS)
    return {name: given.get(name) for name in MATTERS}


NO_STORE = expect(content_type=JSON, cache_control="no-store", pragma="no-cache")
CHALLENGED = expect(
    content_type=JSON, cache_control="no-store", pragma="no-cache", www_authenticate=BASIC_CHALLENGE
)
NOT_ALLOWED_POST = expect(content_type=JSON, cache_control="no-store", pragma="no-cache", allow="POST")
NOT_ALLOWED_GET = expect(content_type=JSON, cache_control="no-store", allow="GET, HEAD")
PUBLIC = expect(content_type=JSON, cache_control="public, max-age=300")
EMPTY = expect(cache_control="no-store", pragma="no-cache")
DEMO = expect(content_type=JSON)


def bearer(challenge: str) -> dict[str, str | None]:
    return expect(content_type=JSON, cache_control="no-store", www_authenticate=challenge)


def error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


def secret_post(created: CreatedSecret) -> list[tuple[str, str]]:
    return [("client_id", created.client_id), ("client_secret", created.client_secret)]


def client_basic(world: World) -> str:
    return basic(world.client.client_id, world.client.client_secret)


CC = [("grant_type", "client_credentials")]


def issued(scope: str, *, refresh: bool = False) -> Callable[[World, Any], bool]:
    def check(world: World, body: Any) -> bool:
        members = {"access_token", "token_type", "expires_in", "scope"} | (
            {"refresh_token"} if refresh else set()
        )
        return (
            set(body) == members
            and body["token_type"] == "Bearer"
            and body["expires_in"] == 3600
            and body["scope"] == scope
            and world.auth.verify(body["access_token"]).scopes == frozenset(scope.split())
            and (not refresh or body["refresh_token"] == world.refresh_token)
        )

    return check


def padded(world: World) -> list[tuple[str, str]]:
    """A valid token request of exactly MAX_FORM_BYTES bytes (an unknown parameter pads it)."""
    pairs = [*CC, *secret_post(world.client), ("pad", "")]
    size = len(urlencode(pairs))
    return [*pairs[:-1], ("pad", "x" * (MAX_FORM_BYTES - size))]


def introspected(world: World, body: Any) -> bool:
    principal = world.auth.verify(world.token)
    return bool(
        body
        == {
            "active": True,
            "token_type": "Bearer",
            "scope": "devices:read devices:write",
            "client_id": world.client.client_id,
            "sub": world.client.client_id,
            "iss": ISSUER,
            "aud": ISSUER,
            "exp": int(principal.expires_at),
            "iat": int(principal.issued_at),
            "jti": principal.token_id,
            "customer_scope": "all",
            "tenant": "site-1",
        }
    )


def metadata(world: World, body: Any) -> bool:
    return bool(
        body["issuer"] == ISSUER
        and body["token_endpoint"] == ISSUER + "/oauth/token"
        and body["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
        and body["scopes_supported"] == ["devices:read", "devices:write", "users:read"]
    )


def jwks(world: World, body: Any) -> bool:
    kids = {key["kid"] for key in body["keys"]}
    return bool(kids and set(body) == {"keys"})


INVALID_REQUEST_CHALLENGE = (
    f'{REALM}, error="invalid_request", error_description="the Authorization header must be: Bearer <token>"'
)
INVALID_TOKEN_CHALLENGE = (
    f'{REALM}, error="invalid_token", error_description="the access token is invalid, expired or revoked"'
)
INSUFFICIENT_CHALLENGE = (
    f'{REALM}, error="insufficient_scope", error_description="the access token lacks a scope this needs", '
    'scope="devices:read"'
)
BEARER_REQUIRED = error("unauthorized", "a bearer token is required")
MALFORMED = error("invalid_request", "the Authorization header must be: Bearer <token>")
INVALID_TOKEN = error("invalid_token", "the access token is invalid, expired or revoked")
INSUFFICIENT = {
    **error("insufficient_scope", "the access token lacks a scope this needs"),
    "scope": "devices:read",
}
TOO_LARGE = error("invalid_request", f"the request body is larger than {MAX_FORM_BYTES} bytes")
NOT_FORM = error("invalid_request", f"the request body must be {FORM}")


CASES = [
    # --- token: success
    Case("token-basic", "POST", "/oauth/token", 200, NO_STORE, issued("devices:read devices:write"),
         form=lambda w: CC, authorization=client_basic, volatile=("access_token",)),
    Case("token-post", "POST", "/oauth/token", 200, NO_STORE, issued("devices:read devices:write"),
         form=lambda w: [*CC, *secret_post(w.client)], volatile=("access_token",)),
    Case("token-charset-parameter", "POST", "/oauth/token", 200, NO_STORE, issued("devices:read devices:write"),
         form=lambda w: [*CC, *secret_post(w.client)], content_type=f"{FORM}; charset=UTF-8",
         volatile=("access_token",)),
    Case("token-scope-subset", "POST", "/oauth/token", 200, NO_STORE, issued("devices:read"),
         form=lambda w: [*CC, ("scope", "devices:read")], authorization=client_basic, volatile=("access_token",)),
    Case("token-refresh-grant", "POST", "/oauth/token", 200, NO_STORE, issued("devices:read", refresh=True),
         form=lambda w: [("grant_type", "refresh_token"), ("refresh_token", w.refresh_token)],
         volatile=("access_token",)),
    Case("token-body-of-exactly-the-limit", "POST", "/oauth/token", 200, NO_STORE,
         issued("devices:read devices:write"), form=padded, volatile=("access_token",)),
    # --- token: every error class
    Case("token-missing-grant-type", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "grant_type is missing"), form=lambda w: secret_post(w.client)),
    Case("token-repeated-parameter", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "the parameter grant_type is repeated"),
         form=lambda w: [*CC, *CC, *secret_post(w.client)]),
    Case("token-two-authentication-methods", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "use exactly one client authentication method"),
         form=lambda w: [*CC, *secret_post(w.client)], authorization=client_basic),
    Case("token-refresh-with-client-credentials", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "refresh tokens here are not bound to a client: send no client credentials"),
         form=lambda w: [("grant_type", "refresh_token"), ("refresh_token", w.refresh_token)],
         authorization=client_basic),
    Case("token-unsupported-grant-type", "POST", "/oauth/token", 400, NO_STORE,
         error("unsupported_grant_type", "the grant types supported are client_credentials and refresh_token"),
         form=lambda w: [("grant_type", "password")], authorization=client_basic),
    Case("token-wrong-secret-basic", "POST", "/oauth/token", 401, CHALLENGED, error("invalid_client", FAILED),
         form=lambda w: CC, authorization=lambda w: basic(w.client.client_id, w.limited.client_secret)),
    Case("token-unknown-client-post", "POST", "/oauth/token", 401, NO_STORE, error("invalid_client", FAILED),
         form=lambda w: [*CC, ("client_id", "nobody"), ("client_secret", w.client.client_secret)]),
    Case("token-with-a-bearer-header", "POST", "/oauth/token", 401, CHALLENGED,
         error("invalid_client", "the Authorization header must use the Basic scheme"),
         form=lambda w: CC, authorization=lambda w: f"Bearer {w.token}"),
    Case("token-no-client-authentication", "POST", "/oauth/token", 401, CHALLENGED,
         error("invalid_client", "client authentication is required"), form=lambda w: CC),
    Case("token-disabled-registration", "POST", "/oauth/token", 401, NO_STORE,
         error("invalid_client", "the registration is disabled"), form=lambda w: [*CC, *secret_post(w.paused)]),
    Case("token-invalid-scope", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_scope", "not granted to this client: users:read"),
         form=lambda w: [*CC, ("scope", "devices:read users:read")], authorization=client_basic),
    Case("token-invalid-grant", "POST", "/oauth/token", 400, NO_STORE,
         lambda w, body: body["error"] == "invalid_grant",
         form=lambda w: [("grant_type", "refresh_token"), ("refresh_token", mistyped(w.refresh_token))]),
    # --- token: transport
    Case("token-json-body", "POST", "/oauth/token", 400, NO_STORE, NOT_FORM,
         raw=lambda w: b'{"grant_type": "client_credentials"}', content_type=JSON, authorization=client_basic),
    Case("token-no-content-type", "POST", "/oauth/token", 400, NO_STORE, NOT_FORM,
         form=lambda w: CC, content_type=None, authorization=client_basic),
    Case("token-latin1-charset", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "the request body must be UTF-8"),
         form=lambda w: CC, content_type=f"{FORM}; charset=ISO-8859-1", authorization=client_basic),
    Case("token-not-utf8", "POST", "/oauth/token", 400, NO_STORE,
         error("invalid_request", "the request body must be UTF-8"),
         raw=lambda w: b"grant_type=client_credentials&scope=%FF", authorization=client_basic),
    Case("token-oversized-body", "POST", "/oauth/token", 400, NO_STORE, TOO_LARGE,
         raw=lambda w: urlencode([*CC, ("pad", "x" * MAX_FORM_BYTES)]).encode(), authorization=client_basic),
    Case("token-get", "GET", "/oauth/token", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST")),
    Case("token-put", "PUT", "/oauth/token", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST"), form=lambda w: CC),
    Case("token-options", "OPTIONS", "/oauth/token", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST")),
    Case("token-any-other-method", "PROPFIND", "/oauth/token", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST")),
    # --- revoke (RFC 7009)
    Case("revoke-own-token", "POST", "/oauth/revoke", 200, EMPTY, None,
         form=lambda w: [("token", w.token)], authorization=client_basic),
    Case("revoke-by-possession", "POST", "/oauth/revoke", 200, EMPTY, None, form=lambda w: [("token", w.token)]),
    Case("revoke-refresh-token", "POST", "/oauth/revoke", 200, EMPTY, None,
         form=lambda w: [("token", w.refresh_token), ("token_type_hint", "refresh_token")]),
    Case("revoke-unknown-token", "POST", "/oauth/revoke", 200, EMPTY, None,
         form=lambda w: [("token", "garbage")], authorization=client_basic),
    Case("revoke-another-clients-token", "POST", "/oauth/revoke", 400, NO_STORE,
         error("unauthorized_client", "the token was not issued to this client"),
         form=lambda w: [("token", w.stranger_token)], authorization=client_basic),
    Case("revoke-wrong-secret", "POST", "/oauth/revoke", 401, CHALLENGED, error("invalid_client", FAILED),
         form=lambda w: [("token", w.token)], authorization=lambda w: basic(w.client.client_id, "x")),
    Case("revoke-missing-token", "POST", "/oauth/revoke", 400, NO_STORE,
         error("invalid_request", "token is missing"), form=lambda w: [], authorization=client_basic),
    Case("revoke-get", "GET", "/oauth/revoke", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST")),
    # --- introspect (RFC 7662)
    Case("introspect-active", "POST", "/oauth/introspect", 200, NO_STORE, introspected,
         form=lambda w: [("token", w.token)], authorization=client_basic),
    Case("introspect-other-tenant", "POST", "/oauth/introspect", 200, NO_STORE, {"active": False},
         form=lambda w: [("token", w.stranger_token)], authorization=client_basic),
    Case("introspect-garbage", "POST", "/oauth/introspect", 200, NO_STORE, {"active": False},
         form=lambda w: [("token", "garbage")], authorization=client_basic),
    Case("introspect-without-client-authentication", "POST", "/oauth/introspect", 401, CHALLENGED,
         error("invalid_client", "client authentication is required"), form=lambda w: [("token", w.token)]),
    Case("introspect-delete", "DELETE", "/oauth/introspect", 405, NOT_ALLOWED_POST,
         error("invalid_request", "allowed methods: POST")),
    # --- metadata and keys
    Case("metadata", "GET", "/.well-known/oauth-authorization-server", 200, PUBLIC, metadata),
    Case("openid-configuration", "GET", "/.well-known/openid-configuration", 200, PUBLIC, metadata),
    Case("metadata-head", "HEAD", "/.well-known/oauth-authorization-server", 200, PUBLIC, None),
    Case("metadata-post", "POST", "/.well-known/oauth-authorization-server", 405, NOT_ALLOWED_GET,
         error("invalid_request", "allowed methods: GET, HEAD"), form=lambda w: CC),
    Case("jwks", "GET", "/.well-known/jwks.json", 200, PUBLIC, jwks),
    Case("jwks-head", "HEAD", "/.well-known/jwks.json", 200, PUBLIC, None),
    Case("jwks-post", "POST", "/.well-known/jwks.json", 405, NOT_ALLOWED_GET,
         error("invalid_request", "allowed methods: GET, HEAD")),
    # --- bearer-protected demo routes (RFC 6750)
    Case("devices-without-token", "GET", "/demo/devices", 401, bearer(REALM), BEARER_REQUIRED),
    Case("devices-malformed-bearer-header", "GET", "/demo/devices", 400, bearer(INVALID_REQUEST_CHALLENGE),
         MALFORMED, authorization=lambda w: "Bearer not a token"),
    Case("devices-bearer-without-token", "GET", "/demo/devices", 400, bearer(INVALID_REQUEST_CHALLENGE),
         MALFORMED, authorization=lambda w: "Bearer"),
    Case("devices-bearer-with-a-bad-character", "GET", "/demo/devices", 401, bearer(INVALID_TOKEN_CHALLENGE),
         INVALID_TOKEN, authorization=lambda w: f"Bearer {w.token}!"),
    Case("devices-another-scheme-is-no-credentials", "GET", "/demo/devices", 401, bearer(REALM), BEARER_REQUIRED,
         authorization=lambda w: "Token abc"),
    Case("devices-basic-is-no-credentials", "GET", "/demo/devices", 401, bearer(REALM), BEARER_REQUIRED,
         authorization=client_basic),
    Case("devices-empty-header", "GET", "/demo/devices", 401, bearer(REALM), BEARER_REQUIRED,
         authorization=lambda w: ""),
    Case("devices-bad-token", "GET", "/demo/devices", 401, bearer(INVALID_TOKEN_CHALLENGE), INVALID_TOKEN,
         authorization=lambda w: "Bearer not.a.token"),
    Case("devices-token-of-a-disabled-registration", "GET", "/demo/devices", 401, bearer(INVALID_TOKEN_CHALLENGE),
         INVALID_TOKEN, authorization=lambda w: f"Bearer {w.paused_token}"),
    Case("devices-insufficient-scope", "GET", "/demo/devices", 403, bearer(INSUFFICIENT_CHALLENGE), INSUFFICIENT,
         authorization=lambda w: f"Bearer {w.limited_token}"),
    Case("devices-granted", "GET", "/demo/devices", 200, DEMO,
         lambda w, body: body == {"devices": [dict(d) for d in DEMO_DEVICES]},
         authorization=lambda w: f"Bearer {w.token}"),
    Case("devices-lower-case-scheme", "GET", "/demo/devices", 200, DEMO,
         lambda w, body: len(body["devices"]) == len(DEMO_DEVICES), authorization=lambda w: f"bearer {w.token}"),
    Case("devices-upper-case-scheme", "GET", "/demo/devices", 200, DEMO,
         lambda w, body: len(body["devices"]) == len(DEMO_DEVICES), authorization=lambda w: f"BEARER {w.token}"),
    Case("whoami-any-token", "GET", "/demo/whoami", 200, DEMO,
         lambda w, body: body.keys() >= {"token_id", "expires_at"} and {
             k: body[k] for k in ("subject", "client_id", "tenant", "scopes", "customer_scope")
         } == {"subject": w.limited.client_id, "client_id": w.limited.client_id,
               "tenant": "site-1", "scopes": ["users:read"], "customer_scope": "all"},
         authorization=lambda w: f"Bearer {w.limited_token}"),
    Case("whoami-without-token", "GET", "/demo/whoami", 401, bearer(REALM), BEARER_REQUIRED),
    Case("public-without-token", "GET", "/demo/public", 200, DEMO, {"message": "no token needed"}),
]  # fmt: skip


def check(case: Case, world: World, reply: Reply) -> None:
    """One framework's reply against the table."""
    assert reply.status == case.status, reply.body
    for name, value in case.headers.items():
        assert reply.headers.get(name) == value, name
    if case.body is None:
        assert reply.body == b""
        return
    body = json.loads(reply.body)
    if isinstance(case.body, Mapping):
        assert body == case.body
    else:
        assert case.body(world, body), body


def stable(case: Case, reply: Reply) -> tuple[int, bytes, dict[str, str | None]]:
    """What must be byte-identical across frameworks; volatile members (fresh tokens) blanked."""
    body = reply.body
    for member in case.volatile:
        body = body.replace(json.loads(body)[member].encode(), b"<volatile>")
    names = MATTERS if case.volatile else (*MATTERS, "content-length")
    return reply.status, body, {name: reply.headers.get(name) for name in names}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_conformance(case: Case, world: World, clients: tuple[Client, Client]) -> None:
    headers, body = case.request(world)
    replies = [client.send(case.method, case.path, headers, body) for client in clients]
    for reply in replies:
        check(case, world, reply)
    starlette, flask = (stable(case, reply) for reply in replies)
    assert starlette == flask


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


# ------------------------------------------------------------------------- failures below the endpoints


def _down(*args: object, **kwargs: object) -> Any:
    raise StorageError("database unreachable")


def _bug(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("a bug")


UNAVAILABLE = {
    "content-type": JSON,
    "cache-control": "no-store",
    "pragma": "no-cache",
    "retry-after": "1",
    "www-authenticate": None,
    "allow": None,
}


@pytest.mark.parametrize(
    ("target", "method", "path", "form", "bearer_token"),
    [
        ("tokens.for_client", "POST", "/oauth/token", True, False),
        ("permissions.list", "GET", "/.well-known/oauth-authorization-server", False, False),
        ("verify", "GET", "/demo/devices", False, True),
    ],
    ids=["token-endpoint", "metadata", "bearer-middleware"],
)
def test_storage_error_is_503_in_both(
    world: World,
    clients: tuple[Client, Client],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    method: str,
    path: str,
    form: bool,
    bearer_token: bool,
) -> None:
    owner_path, _, attribute = target.rpartition(".")
    owner: Any = world.auth
    for part in filter(None, owner_path.split(".")):
        owner = getattr(owner, part)
    monkeypatch.setattr(owner, attribute, _down)
    headers = [("Authorization", f"Bearer {world.token}" if bearer_token else client_basic(world))]
    body = None
    if form:
        headers.append(("Content-Type", FORM))
        body = urlencode(CC).encode()
    replies = [client.send(method, path, headers, body) for client in clients]
    for reply in replies:
        assert reply.status == 503
        assert reply.json() == {"error": "temporarily_unavailable"}
        assert {name: reply.headers.get(name) for name in UNAVAILABLE} == UNAVAILABLE
    assert replies[0].body == replies[1].body


def test_a_bug_is_the_same_500_in_both(
    world: World, clients: tuple[Client, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world.auth.tokens, "for_client", _bug)
    headers = [("Authorization", client_basic(world)), ("Content-Type", FORM)]
    replies = [client.send("POST", "/oauth/token", headers, urlencode(CC).encode()) for client in clients]
    assert replies[0].status == replies[1].status == 500
    assert replies[0].body == replies[1].body
    assert replies[0].json()["error"] == "server_error"
    assert [reply.headers.get("cache-control") for reply in replies] == ["no-store", "no-store"]
