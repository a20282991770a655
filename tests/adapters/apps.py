"""The two demo applications the adapter tests drive, and one client interface over both.

Both apps sit over the same :class:`EmbedAuth`: the OAuth endpoints, plus ``/demo/devices`` (needs
``devices:read``) and ``/demo/public`` (no token). The demo
bodies are serialised by :func:`embedauth.http.messages.json_bytes`, so that the frameworks' JSON encoders
play no part.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote_plus

import anyio
import flask
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from embedauth import EmbedAuth
from embedauth.adapters.flask import EmbedAuthFlask, current_principal, require_scopes
from embedauth.adapters.starlette import BearerMiddleware, oauth_routes, requires_scopes
from embedauth.clock import FrozenClock
from embedauth.http.messages import json_bytes
from tests.conftest import TEST_SETTINGS

ISSUER = "https://api.example.com"
REALM = ISSUER
CATALOG = ("devices:read", "devices:write", "users:read")
#: What the middleware never looks at: the OAuth endpoints (Basic credentials) and public pages.
EXEMPT = ("/oauth/", "/.well-known/", "/demo/public")
JSON = "application/json"


@contextmanager
def open_auth(clock: FrozenClock, **settings: Any) -> Iterator[EmbedAuth]:
    """An EmbedAuth on memory:// with the test catalog, frozen clock and cheap argon2."""
    options: dict[str, Any] = {"issuer": ISSUER, **TEST_SETTINGS, **settings}
    with EmbedAuth("memory://", clock=clock, **options) as auth:
        for name in CATALOG:
            auth.permissions.add(name, description=f"{name} access")
        yield auth


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, client_secret: str) -> str:
    """An ``Authorization: Basic`` value per RFC 6749 §2.3.1."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


DEVICES = ["sensor-1", "sensor-2"]


# ---------------------------------------------------------------------------- Starlette


@requires_scopes("devices:read")
async def _starlette_devices(request: Request) -> Response:
    body = {"devices": DEVICES, "client_id": request.user.principal.client_id}
    return Response(json_bytes(body), media_type=JSON)


def _starlette_public(request: Request) -> Response:
    return Response(json_bytes({"public": True}), media_type=JSON)


def starlette_app(auth: EmbedAuth, **middleware: Any) -> Starlette:
    routes = [
        *oauth_routes(auth),
        Route("/demo/devices", _starlette_devices),
        Route("/demo/public", _starlette_public),
    ]
    options: dict[str, Any] = {"verifier": auth, "realm": REALM, "exempt": EXEMPT, **middleware}
    return Starlette(routes=routes, middleware=[Middleware(BearerMiddleware, **options)])


# ---------------------------------------------------------------------------- Flask


def flask_app(auth: EmbedAuth, **extension: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    EmbedAuthFlask(app, auth, realm=REALM, **extension)

    @app.get("/demo/devices")
    @require_scopes("devices:read")
    def devices() -> flask.Response:
        body = {"devices": DEVICES, "client_id": current_principal.client_id}
        return flask.Response(json_bytes(body), mimetype=JSON)

    @app.get("/demo/public")
    def public() -> flask.Response:
        return flask.Response(json_bytes({"public": True}), mimetype=JSON)

    return app


# ---------------------------------------------------------------------------- one client for both


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    """Names lower-cased; repeated headers joined with ``", "``."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Headers = Mapping[str, str] | Sequence[tuple[str, str]]


class Client(Protocol):
    name: str

    def send(self, method: str, path: str, headers: Headers = (), body: bytes | None = None) -> Reply: ...


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _collect(pairs: Iterator[tuple[str, str]]) -> dict[str, str]:
    collected: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        collected[key] = f"{collected[key]}, {value}" if key in collected else value
    return collected


def asgi_client(app: ASGIApp) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in process (Starlette's TestClient wants httpx2)."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=ISSUER)


def reply_of(response: httpx.Response) -> Reply:
    return Reply(response.status_code, _collect(iter(response.headers.multi_items())), response.content)


class StarletteClient:
    """Each request on a fresh event loop, so that sync tests can drive the ASGI app."""

    name = "starlette"

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def send(self, method: str, path: str, headers: Headers = (), body: bytes | None = None) -> Reply:
        async def send() -> Reply:
            async with asgi_client(self.app) as client:
                response = await client.request(method, path, headers=_pairs(headers), content=body)
            return reply_of(response)

        return anyio.run(send)


class FlaskClient:
    name = "flask"

    def __init__(self, app: flask.Flask) -> None:
        self.client = app.test_client()

    def send(self, method: str, path: str, headers: Headers = (), body: bytes | None = None) -> Reply:
        response = self.client.open(path, method=method, headers=_pairs(headers), data=body, base_url=ISSUER)
        return Reply(response.status_code, _collect(iter(response.headers.items())), response.get_data())
