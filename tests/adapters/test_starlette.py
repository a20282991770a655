"""The Starlette and FastAPI adapter: the bearer middleware, ``requires_scopes``, the OAuth routes, and
the FastAPI security dependency. What both frameworks must answer alike is in test_conformance.py."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI, Security
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from embedauth import EmbedAuth, StorageError
from embedauth.adapters import starlette as starlette_adapter
from embedauth.adapters.starlette import (
    GUARD_SCOPE_KEY,
    BearerMiddleware,
    BearerPrincipal,
    PrincipalUser,
    install_bearer_errors,
    mount_oauth,
    oauth_routes,
    requires_scopes,
)
from embedauth.clock import FrozenClock
from embedauth.credentials.secrets import generate_client_secret
from embedauth.hooks import hookimpl
from embedauth.http.bearer import BearerGuard
from embedauth.http.messages import MAX_FORM_BYTES
from embedauth.models import CreatedSecret, Principal
from tests.adapters.apps import (
    ISSUER,
    REALM,
    asgi_client,
    basic,
    bearer_header,
    open_auth,
    reply_of,
    starlette_app,
)
from tests.conftest import last_changed

pytestmark = pytest.mark.anyio

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CLIENT_CREDENTIALS = urlencode([("grant_type", "client_credentials")]).encode()
BARE_CHALLENGE = f'Bearer realm="{REALM}"'
MATTERS = ("content-type", "cache-control", "pragma", "www-authenticate", "content-length")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def get(app: ASGIApp, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with asgi_client(app) as client:
        return await client.get(path, headers=headers)


async def post(
    app: ASGIApp, path: str, content: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    async with asgi_client(app) as client:
        return await client.post(path, content=content, headers=headers)


# ------------------------------------------------------------------------- the middleware


def caller(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "display_name": user.display_name,
            "identity": user.identity,
            "scopes": request.auth.scopes,
            "client_id": user.principal.client_id if isinstance(user, PrincipalUser) else None,
            "guard": isinstance(request.scope.get(GUARD_SCOPE_KEY), BearerGuard),
        }
    )


@requires("devices:read")
async def starlette_read(request: Request) -> PlainTextResponse:
    return PlainTextResponse("read")


@requires("devices:write")
async def starlette_write(request: Request) -> PlainTextResponse:
    return PlainTextResponse("written")


def protected_app(auth: EmbedAuth, **options: Any) -> Starlette:
    routes = [
        Route("/me", caller),
        Route("/read", starlette_read),
        Route("/write", starlette_write),
        Route("/health", caller),
        Route("/health/deep", caller),
        Route("/public/page", caller),
        Route("/private", caller),
    ]
    middleware = [Middleware(BearerMiddleware, verifier=auth, realm=REALM, **options)]
    return Starlette(routes=routes, middleware=middleware)


async def test_the_caller_is_in_request_user_and_request_auth(
    auth: EmbedAuth, created: CreatedSecret, token: str
) -> None:
    app = protected_app(auth)
    response = await get(app, "/me", bearer_header(token))
    assert response.json() == {
        "authenticated": True,
        "display_name": created.client_id,
        "identity": created.client_id,
        "scopes": ["devices:read"],
        "client_id": created.client_id,
        "guard": True,
    }
    anonymous = await get(app, "/me")
    assert anonymous.json() == {
        "authenticated": False,
        "display_name": "",
        "identity": "",
        "scopes": [],
        "client_id": None,
        "guard": True,
    }


async def test_starlettes_own_requires_works(auth: EmbedAuth, token: str) -> None:
    app = protected_app(auth)
    assert (await get(app, "/read", bearer_header(token))).text == "read"
    assert (await get(app, "/write", bearer_header(token))).status_code == 403  # Starlette's own refusal
    assert (await get(app, "/read")).status_code == 403


async def test_principal_user(auth: EmbedAuth, token: str) -> None:
    user = PrincipalUser(auth.verify(token))
    assert user.is_authenticated and user.display_name == user.identity == user.principal.subject
    assert "PrincipalUser(Principal(" in repr(user)


async def test_a_bad_token_is_refused_even_where_no_caller_is_needed(auth: EmbedAuth) -> None:
    response = await get(protected_app(auth), "/me", bearer_header("not-a-token"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_repeated_authorization_headers_are_malformed(auth: EmbedAuth, token: str) -> None:
    async with asgi_client(protected_app(auth)) as client:
        response = await client.get("/me", headers=[("Authorization", f"Bearer {token}")] * 2)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_required_with_exempt_paths(auth: EmbedAuth, token: str) -> None:
    app = protected_app(auth, required=True, exempt=["/health", "/public/"])
    refused = await get(app, "/private")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == BARE_CHALLENGE
    assert refused.json() == {"error": "unauthorized", "error_description": "a bearer token is required"}
    assert (await get(app, "/private", bearer_header(token))).json()["authenticated"] is True
    # Exact match for "/health", prefix match for "/public/"; a 404 is refused like any other path.
    assert (await get(app, "/health")).json()["authenticated"] is False
    assert (await get(app, "/health/deep")).status_code == 401
    assert (await get(app, "/public/page")).json()["authenticated"] is False
    assert (await get(app, "/nowhere")).status_code == 401
    # An exempt path's header is not even looked at (the OAuth endpoints must see their own).
    assert (await get(app, "/health", {"Authorization": "Bearer not a token"})).status_code == 200
    assert (await get(app, "/health", bearer_header(token))).json()["authenticated"] is False


async def test_a_disabled_registrations_token_is_refused_at_once(
    auth: EmbedAuth, created: CreatedSecret, token: str
) -> None:
    app = starlette_app(auth)
    assert (await get(app, "/demo/devices", bearer_header(token))).status_code == 200
    auth.registrations.disable(created.client_id)
    refused = await get(app, "/demo/devices", bearer_header(token))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"


async def test_storage_failure_while_verifying_is_503(
    auth: EmbedAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(token: str) -> Principal:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth, "verify", down)
    response = await get(protected_app(auth), "/me", bearer_header(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


# ------------------------------------------------------------------------- non-HTTP scopes


async def handshake(app: ASGIApp, headers: list[tuple[bytes, bytes]], path: str = "/ws") -> list[Message]:
    """Drive one WebSocket connection at the ASGI level; returns what the app sent."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "server": ("api.example.com", 443),
        "client": ("127.0.0.1", 50000),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com"), *headers],
        "subprotocols": [],
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.user.display_name, "scopes": websocket.auth.scopes})
    await websocket.close()


@requires_scopes("devices:write")
async def write_socket(websocket: WebSocket) -> None:
    await greet(websocket)


def socket_app(auth: EmbedAuth, **options: Any) -> Starlette:
    return Starlette(
        routes=[WebSocketRoute("/ws", greet), WebSocketRoute("/ws/write", write_socket)],
        middleware=[Middleware(BearerMiddleware, verifier=auth, realm=REALM, **options)],
    )


def auth_header(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", value.encode())]


async def test_websocket_with_a_valid_token(auth: EmbedAuth, created: CreatedSecret, token: str) -> None:
    sent = await handshake(socket_app(auth), auth_header(f"Bearer {token}"))
    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert created.client_id in sent[1]["text"]


async def test_websocket_refusals_close_with_1008(auth: EmbedAuth, token: str) -> None:
    closed = [{"type": "websocket.close", "code": 1008}]
    assert await handshake(socket_app(auth), auth_header("Bearer not-a-token")) == closed
    assert await handshake(socket_app(auth), auth_header("Bearer not a token")) == closed
    assert await handshake(socket_app(auth, required=True), []) == closed
    # requires_scopes on a WebSocket endpoint: accepted by the middleware, closed by the decorator.
    (message,) = await handshake(socket_app(auth), auth_header(f"Bearer {token}"), "/ws/write")
    assert (message["type"], message["code"]) == ("websocket.close", 1008)


async def test_websocket_without_a_token_is_anonymous(auth: EmbedAuth) -> None:
    sent = await handshake(socket_app(auth), [])
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1]["text"] == '{"user":"","scopes":[]}'


async def test_lifespan_passes_straight_through(auth: EmbedAuth) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    middleware = BearerMiddleware(inner, auth, realm=REALM, required=True)

    async def receive() -> Message:
        raise AssertionError("lifespan messages are the app's business")

    async def send(message: Message) -> None:
        raise AssertionError("lifespan messages are the app's business")

    await middleware(scope, receive, send)
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}]


async def test_an_apps_lifespan_runs_behind_a_required_middleware(auth: EmbedAuth) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        lifespan=lifespan,
        middleware=[Middleware(BearerMiddleware, verifier=auth, realm=REALM, required=True)],
    )
    inbox: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert events == ["startup", "shutdown"]
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


# ------------------------------------------------------------------------- requires_scopes


@requires_scopes("devices:read")
async def async_devices(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.principal.client_id)


@requires_scopes("devices:read")
def sync_devices(request: Request) -> PlainTextResponse:
    assert threading.current_thread() is not threading.main_thread()
    return PlainTextResponse(request.user.principal.client_id)


@requires_scopes("devices:write")
def sync_write(request: Request) -> PlainTextResponse:
    return PlainTextResponse("written")


class Devices(HTTPEndpoint):
    @requires_scopes("devices:read")
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("from a class")


def scoped_app(auth: EmbedAuth, *, middleware: bool = True) -> Starlette:
    routes = [
        Route("/async", async_devices),
        Route("/sync", sync_devices),
        Route("/write", sync_write),
        Route("/class", Devices),
    ]
    stack = [Middleware(BearerMiddleware, verifier=auth, realm=REALM)] if middleware else []
    return Starlette(routes=routes, middleware=stack)


@pytest.mark.parametrize("path", ["/async", "/sync", "/class"])
async def test_requires_scopes(auth: EmbedAuth, created: CreatedSecret, token: str, path: str) -> None:
    app = scoped_app(auth)
    granted = await get(app, path, bearer_header(token))
    assert granted.status_code == 200
    assert granted.text in {created.client_id, "from a class"}
    refused = await get(app, path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == BARE_CHALLENGE
    assert refused.headers["cache-control"] == "no-store"


async def test_requires_scopes_insufficient_scope(auth: EmbedAuth, token: str) -> None:
    refused = await get(scoped_app(auth), "/write", bearer_header(token))
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "insufficient_scope",
        "error_description": "the access token lacks a scope this needs",
        "scope": "devices:write",
    }
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="devices:write"' in refused.headers["www-authenticate"]


async def test_requires_scopes_needs_the_middleware(auth: EmbedAuth, token: str) -> None:
    with pytest.raises(RuntimeError, match="BearerMiddleware"):
        await get(scoped_app(auth, middleware=False), "/async", bearer_header(token))


def test_requires_scopes_needs_a_request() -> None:
    @requires_scopes()
    def nothing() -> None:
        raise AssertionError

    with pytest.raises(TypeError, match="no Request"):
        nothing()


# ------------------------------------------------------------------------- the OAuth routes


class Threads:
    """Where the token endpoint ran: each ``for_client`` call's thread, and each thread-pool hop."""

    def __init__(self, auth: EmbedAuth, monkeypatch: pytest.MonkeyPatch) -> None:
        self.grants: list[int] = []
        self.hops = 0
        for_client = auth.tokens.for_client
        hop = run_in_threadpool

        def recording(*args: Any, **kwargs: Any) -> Any:
            self.grants.append(threading.get_ident())
            return for_client(*args, **kwargs)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.hops += 1
            return await hop(*args, **kwargs)

        monkeypatch.setattr(auth.tokens, "for_client", recording)
        monkeypatch.setattr(starlette_adapter, "run_in_threadpool", counted)

    def take(self) -> tuple[int, bool]:
        """(thread-pool hops, whether the grant ran on the event loop) since the last call."""
        hops, grants = self.hops, self.grants
        self.hops, self.grants = 0, []
        return hops, bool(grants) and grants[-1] == threading.get_ident()


class BlockingListener:
    """A third-party plugin on the token path: it might block, so it must run off the event loop."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    @hookimpl
    def embedauth_token_issued(self, client_id: str, **_: Any) -> None:
        self.threads.append(threading.get_ident())


async def test_the_token_endpoint_answers_on_the_event_loop_only_from_memory(
    auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that authenticated before gets its token on the event loop (no storage, no argon2,
    no thread); a first request, a wrong secret and a blocking plugin go to the thread pool, and a
    request answered again there leaves one audit record, not two."""
    app, threads = starlette_app(auth), Threads(auth, monkeypatch)
    good = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    wrong = {**FORM, "Authorization": basic(created.client_id, generate_client_secret())}
    malformed = {**FORM, "Authorization": basic(created.client_id, last_changed(created.client_secret))}

    async def token(headers: dict[str, str]) -> tuple[int, tuple[int, bool]]:
        response = await post(app, "/oauth/token", CLIENT_CREDENTIALS, headers)
        return response.status_code, threads.take()

    assert await token(good) == (200, (1, False))  # first: registration read, argon2 run
    assert await token(good) == (200, (0, True))  # from memory, on the loop
    assert await token(good) == (200, (0, True))
    assert await token(wrong) == (401, (1, False))  # argon2 for the wrong secret: off the loop
    assert await token(malformed) == (401, (0, False))  # its checksum fails: no lookup, no argon2
    auth.registrations.update(created.client_id, name="renamed")  # the view drops it: storage again
    assert await token(good) == (200, (1, False))
    assert await token(good) == (200, (0, True))
    auth.flush()
    issued = [r for r in auth.audit.list(None, limit=50).items if r.action == "token.issued"]
    assert sum(int(r.detail.get("count", 1)) for r in issued) == 5
    listener = BlockingListener()
    auth.plugins.register(listener)
    assert await token(good) == (200, (1, False))
    assert listener.threads and listener.threads[0] != threading.get_ident()


async def test_storage_failure_at_the_token_endpoint_is_503(
    auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object) -> None:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth.storage, "get_registration", down)
    headers = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    response = await post(starlette_app(auth), "/oauth/token", CLIENT_CREDENTIALS, headers)
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable"}
    assert response.headers["retry-after"] == "1"
    assert response.headers["cache-control"] == "no-store"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_streamed_body_is_counted(auth: EmbedAuth, created: CreatedSecret) -> None:
    app = starlette_app(auth)
    headers = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    small = await post(app, "/oauth/token", chunks(b"grant_type=client_", b"credentials"), headers)
    assert "content-length" not in small.request.headers
    assert small.status_code == 200
    piece = b"x" * 10_000
    large = await post(app, "/oauth/token", chunks(CLIENT_CREDENTIALS + b"&pad=", *[piece] * 7), headers)
    assert large.status_code == 400
    assert large.json()["error_description"] == f"the request body is larger than {MAX_FORM_BYTES} bytes"


async def test_a_declared_oversized_body_is_refused_unread(auth: EmbedAuth) -> None:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "server": ("api.example.com", 443),
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(MAX_FORM_BYTES + 1).encode()),
        ],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the body was read")

    async def send(message: Message) -> None:
        sent.append(message)

    await starlette_app(auth)(scope, receive, send)
    assert sent[0]["status"] == 400


async def test_a_client_that_disconnects_gets_nothing(auth: EmbedAuth) -> None:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "server": ("api.example.com", 443),
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await starlette_app(auth)(scope, receive, send)
    assert sent == []


async def test_prefix(auth: EmbedAuth, created: CreatedSecret) -> None:
    app = Starlette(routes=oauth_routes(auth, prefix="/auth"))
    headers = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    assert (await post(app, "/auth/oauth/token", CLIENT_CREDENTIALS, headers)).status_code == 200
    assert (await post(app, "/oauth/token", CLIENT_CREDENTIALS, headers)).status_code == 404
    assert (await get(app, "/.well-known/oauth-authorization-server")).status_code == 200
    assert (await get(app, "/auth/.well-known/jwks.json")).json() == (
        await get(app, "/.well-known/jwks.json")
    ).json()


async def test_the_prefix_defaults_to_the_one_the_metadata_advertises(clock: FrozenClock) -> None:
    with open_auth(clock, endpoint_prefix="/api") as auth:
        app = Starlette(routes=oauth_routes(auth))
        metadata = (await get(app, "/.well-known/oauth-authorization-server")).json()
        for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint", "jwks_uri"):
            path = metadata[name].removeprefix(ISSUER)
            assert path.startswith("/api/")
            assert (await get(app, path)).status_code in {200, 405}, name


async def test_mount_oauth_on_an_existing_app(auth: EmbedAuth, created: CreatedSecret) -> None:
    app = Starlette(routes=[Route("/", caller)])
    mount_oauth(app, auth)
    headers = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    assert (await post(app, "/oauth/token", CLIENT_CREDENTIALS, headers)).status_code == 200
    assert app.url_path_for("embedauth:token") == "/oauth/token"


# ------------------------------------------------------------------------- FastAPI


def fastapi_app(verifier: Any, *, handler: bool = True, middleware: bool = False) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(
            BearerMiddleware, verifier=verifier, realm=REALM, exempt=["/oauth/", "/.well-known/"]
        )
    if handler:
        install_bearer_errors(app)
    bearer = BearerPrincipal(verifier, realm=REALM)

    @app.get("/devices")
    async def devices(
        principal: Principal = Security(bearer, scopes=["devices:read"]),  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, str]:
        return {"client_id": principal.client_id}

    @app.get("/whoami")
    def whoami(principal: Principal = Security(bearer)) -> dict[str, Any]:  # noqa: B008 - FastAPI's idiom
        return {"subject": principal.subject, "scopes": sorted(principal.scopes)}

    return app


async def test_fastapi_dependency_gives_the_principal(
    auth: EmbedAuth, created: CreatedSecret, token: str
) -> None:
    app = fastapi_app(auth)
    assert (await get(app, "/devices", bearer_header(token))).json() == {"client_id": created.client_id}
    assert (await get(app, "/whoami", bearer_header(token))).json() == {
        "subject": created.client_id,
        "scopes": ["devices:read"],
    }


async def test_fastapi_refusals_are_the_middlewares_bytes(auth: EmbedAuth, token: str) -> None:
    limited = auth.registrations.create(tenant="site-1", name="Users", scopes=["users:read"])
    limited_token = auth.tokens.client_credentials(limited.client_id, limited.client_secret).access_token
    middleware_app, fastapi = starlette_app(auth), fastapi_app(auth)
    for headers in [
        None,
        bearer_header("not-a-token"),
        {"Authorization": "Token x"},
        bearer_header(limited_token),
    ]:
        expected = reply_of(await get(middleware_app, "/demo/devices", headers))
        actual = reply_of(await get(fastapi, "/devices", headers))
        assert expected.status in {400, 401, 403}
        assert (actual.status, actual.body) == (expected.status, expected.body)
        assert {name: actual.headers.get(name) for name in MATTERS} == {
            name: expected.headers.get(name) for name in MATTERS
        }


async def test_fastapi_without_the_handler_still_sends_the_status_and_challenge(auth: EmbedAuth) -> None:
    response = await get(fastapi_app(auth, handler=False), "/devices", bearer_header("not-a-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(f'{BARE_CHALLENGE}, error="invalid_token"')
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "detail": {
            "error": "invalid_token",
            "error_description": "the access token is invalid, expired or revoked",
        }
    }


async def test_fastapi_storage_failure_is_503(
    auth: EmbedAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(token: str) -> Principal:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth, "verify", down)
    response = await get(fastapi_app(auth), "/devices", bearer_header(token))
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable"}
    assert response.headers["retry-after"] == "1"


async def test_openapi_declares_the_bearer_scheme(auth: EmbedAuth) -> None:
    app = fastapi_app(auth)
    mount_oauth(app, auth)
    schema = (await get(app, "/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "BearerPrincipal": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert schema["paths"]["/devices"]["get"]["security"] == [{"BearerPrincipal": ["devices:read"]}]
    assert not any(path.startswith(("/oauth", "/.well-known")) for path in schema["paths"])


async def test_fastapi_reuses_the_caller_the_middleware_verified(auth: EmbedAuth, token: str) -> None:
    class Counting:
        calls = 0

        def verify(self, token: str) -> Principal:
            self.calls += 1
            return auth.verify(token)

    counting = Counting()
    app = fastapi_app(counting, middleware=True)
    assert (await get(app, "/devices", bearer_header(token))).status_code == 200
    assert counting.calls == 1


async def test_mount_oauth_on_fastapi(auth: EmbedAuth, created: CreatedSecret) -> None:
    app = fastapi_app(auth, middleware=True)
    mount_oauth(app, auth)
    headers = {**FORM, "Authorization": basic(created.client_id, created.client_secret)}
    issued = await post(app, "/oauth/token", CLIENT_CREDENTIALS, headers)
    assert issued.status_code == 200
    devices = await get(app, "/devices", bearer_header(issued.json()["access_token"]))
    assert devices.json() == {"client_id": created.client_id}
    assert (await get(app, "/.well-known/jwks.json")).status_code == 200


async def test_an_unprotected_starlette_response_is_untouched(auth: EmbedAuth) -> None:
    async def plain(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    app = Starlette(
        routes=[Route("/", plain)], middleware=[Middleware(BearerMiddleware, verifier=auth, realm=REALM)]
    )
    response = await get(app, "/")
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_fastapi_is_optional() -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "import embedauth.adapters.starlette as adapter\n"
        "assert not adapter.HAS_FASTAPI and 'BearerPrincipal' not in adapter.__all__\n"
        "assert hasattr(adapter, 'BearerMiddleware')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
