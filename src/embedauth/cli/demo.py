"""What ``embedauth serve`` runs: the OAuth endpoints, the management API and admin page (behind
the built-in bearer guard: tokens holding ``embedauth:admin``), and a small demo API.

The demo API shows what an embedding product writes, in each framework:

* ``GET /demo/public``: no token needed;
* ``GET /demo/whoami``: any valid token; answers the caller as JSON;
* ``GET /demo/devices``: needs the scope ``devices:read``; lists the demo devices the token's
  customer scope reaches.

Both frameworks answer byte for byte the same: their JSON goes through
:func:`embedauth.http.messages.json_bytes`, as every other body does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from embedauth.core import EmbedAuth
from embedauth.http.messages import json_bytes
from embedauth.models import CustomerScopeKind, Principal

__all__ = [
    "DEMO_DEVICES",
    "asgi_app",
    "flask_app",
    "starlette_app",
    "visible_devices",
    "whoami",
]

Framework = Literal["starlette", "flask"]

DEMO_DEVICES: tuple[Mapping[str, str], ...] = (
    {"id": "dev-1", "name": "Front door camera", "customer": "c1", "group": "north"},
    {"id": "dev-2", "name": "Warehouse thermostat", "customer": "c2", "group": "north"},
    {"id": "dev-3", "name": "Lobby badge reader", "customer": "c3", "group": "south"},
)


def whoami(principal: Principal) -> dict[str, Any]:
    """``GET /demo/whoami``: the caller behind the token, as JSON."""
    return {
        "subject": principal.subject,
        "client_id": principal.client_id,
        "tenant": principal.tenant,
        "scopes": sorted(principal.scopes),
        "customer_scope": str(principal.customer_scope),
        "token_id": principal.token_id,
        "expires_at": int(principal.expires_at),
    }


def visible_devices(principal: Principal) -> list[Mapping[str, str]]:
    """The demo devices within the token's customer scope."""
    scope = principal.customer_scope
    if scope.kind is CustomerScopeKind.ALL:
        return list(DEMO_DEVICES)
    field = "customer" if scope.kind is CustomerScopeKind.CUSTOMERS else "group"
    return [device for device in DEMO_DEVICES if device[field] in scope.ids]


def starlette_app(auth: EmbedAuth, *, demo: bool = True) -> Any:
    """A Starlette app: the OAuth routes and, with ``demo``, the demo API behind the bearer middleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from embedauth.adapters.starlette import BearerMiddleware, admin_routes, oauth_routes, requires_scopes

    def reply(body: Any) -> Response:
        return Response(json_bytes(body), media_type="application/json")

    async def public(request: Request) -> Response:
        return reply({"message": "no token needed"})

    @requires_scopes()
    async def who(request: Request) -> Response:
        return reply(whoami(request.user.principal))

    @requires_scopes("devices:read")
    async def devices(request: Request) -> Response:
        return reply({"devices": visible_devices(request.user.principal)})

    endpoints = [*oauth_routes(auth), *admin_routes(auth)]
    if not demo:
        return Starlette(routes=endpoints)
    routes = [
        *endpoints,
        Route("/demo/public", public),
        Route("/demo/whoami", who),
        Route("/demo/devices", devices),
    ]
    # The OAuth endpoints authenticate clients themselves (a Bearer header there is not ours), and
    # the admin surface has its own guard.
    settings = auth.settings
    admin = [
        path + suffix
        for path in (settings.admin_api_prefix, settings.admin_page_path)
        if path
        for suffix in ("", "/")
    ]
    exempt = (
        *(route.path for route in oauth_routes(auth) if isinstance(route, Route)),
        *admin,
        "/demo/public",
    )
    middleware = [Middleware(BearerMiddleware, verifier=auth, realm=auth.settings.issuer, exempt=exempt)]
    return Starlette(routes=routes, middleware=middleware)


def flask_app(auth: EmbedAuth, *, demo: bool = True) -> Any:
    """A Flask app with the same endpoints and, with ``demo``, the same demo API."""
    from flask import Flask, Response

    from embedauth.adapters.flask import EmbedAuthFlask, current_principal, require_scopes

    app = Flask("embedauth")
    EmbedAuthFlask(app, auth, admin=True)
    if not demo:
        return app

    def reply(body: Any) -> Response:
        return Response(json_bytes(body), content_type="application/json")

    @app.get("/demo/public")
    def public() -> Response:
        return reply({"message": "no token needed"})

    @app.get("/demo/whoami")
    @require_scopes()
    def who() -> Response:
        return reply(whoami(current_principal))

    @app.get("/demo/devices")
    @require_scopes("devices:read")
    def devices() -> Response:
        return reply({"devices": visible_devices(current_principal)})

    return app


def asgi_app(auth: EmbedAuth, framework: Framework = "starlette", *, demo: bool = True) -> Any:
    """The app to hand to uvicorn: Starlette's directly, Flask's through a2wsgi."""
    if framework == "flask":
        from a2wsgi import WSGIMiddleware

        # Enough workers that requests waiting on a storage outage (one timeout each, until the
        # outage gate shuts) do not leave the token checks, which need no storage, without one.
        return WSGIMiddleware(flask_app(auth, demo=demo), workers=64)
    return starlette_app(auth, demo=demo)
