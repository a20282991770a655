"""The apps ``benchmarks/http.py`` serves: the same JSON endpoint, bare or behind embedauth's bearer check.

* Starlette, under uvicorn: ``uvicorn --factory benchmarks.http_app:create``;
* Flask, under gunicorn: ``gunicorn 'benchmarks.http_app:create_flask()'``.

``EMBEDAUTH_BENCH_APP`` picks ``bare`` (the endpoint, nothing else) or ``protected`` (the same
endpoint behind :class:`~embedauth.adapters.starlette.BearerMiddleware` and
:func:`~embedauth.adapters.starlette.requires_scopes`, or Flask's
:func:`~embedauth.adapters.flask.require_scopes`, needing ``devices:read``). A protected app
reads ``EMBEDAUTH_STORAGE`` and ``EMBEDAUTH_ISSUER`` (:meth:`Settings.from_env`) and keeps its
revocation state current in the background, as a deployed API does.

Two more Starlette apps take the protected one apart (``benchmarks.http --only starlette-structure``):
``layer`` is the bare endpoint behind a middleware that does nothing but what ``BearerMiddleware``
leaves in the scope for a valid token (a fixed caller, no header read, no verification), and
``layer-requires`` the same with ``requires_scopes`` on the endpoint: what the structure alone
costs, before any token is looked at.
"""

from __future__ import annotations

import os
from typing import Any

from embedauth import EmbedAuth, Settings

__all__ = ["BODY", "SCOPE", "create", "create_flask"]

#: What the endpoint answers, in both frameworks.
BODY = b'{"devices":[{"id":"dev-1","name":"Front door camera"}]}'
#: The scope the protected endpoint needs.
SCOPE = "devices:read"


KINDS = ("bare", "protected", "layer", "layer-requires")


def _kind(kinds: tuple[str, ...] = KINDS) -> str:
    kind = os.environ.get("EMBEDAUTH_BENCH_APP", "bare")
    if kind not in kinds:
        raise ValueError(f"EMBEDAUTH_BENCH_APP must be one of {', '.join(kinds)}, not {kind!r}")
    return kind


def _auth() -> EmbedAuth:
    auth = EmbedAuth(settings=Settings.from_env())
    auth.revocations.start()  # keys and revocations kept current in the background
    return auth


def create() -> Any:
    """The Starlette app (uvicorn ``--factory``)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from embedauth.adapters.starlette import BearerMiddleware, requires_scopes

    async def devices(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    kind = _kind()
    if kind == "bare":
        return Starlette(routes=[Route("/devices", devices)])
    if kind in ("layer", "layer-requires"):
        endpoint = requires_scopes(SCOPE)(devices) if kind == "layer-requires" else devices
        return Starlette(routes=[Route("/devices", endpoint)], middleware=[Middleware(_CallerLayer)])
    auth = _auth()
    middleware = [Middleware(BearerMiddleware, verifier=auth, realm=auth.settings.issuer)]
    return Starlette(routes=[Route("/devices", requires_scopes(SCOPE)(devices))], middleware=middleware)


class _CallerLayer:
    """What :class:`~embedauth.adapters.starlette.BearerMiddleware` leaves in the scope for a valid
    token, with no header read and no verification: a fixed caller holding ``devices:read``."""

    def __init__(self, app: Any) -> None:
        from starlette.authentication import AuthCredentials

        from embedauth.adapters.starlette import GUARD_SCOPE_KEY, PrincipalUser
        from embedauth.http.bearer import BearerGuard
        from embedauth.models import CustomerScope, Principal

        self.app = app
        self.credentials, self.key = AuthCredentials, GUARD_SCOPE_KEY  # no import on the request path
        self.guard = BearerGuard(EmbedAuth("memory://"), realm="bench")
        principal = Principal(
            subject="bench",
            client_id="bench",
            tenant=None,
            scopes=frozenset({SCOPE}),
            customer_scope=CustomerScope(),
            credential_id=None,
            token_id="bench",
            expires_at=0.0,
            issued_at=0.0,
            claims={},
        )
        self.user = PrincipalUser(principal)
        self.scopes = [SCOPE]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[self.key] = self.guard
        scope["auth"], scope["user"] = self.credentials(self.scopes), self.user
        await self.app(scope, receive, send)


def create_flask() -> Any:
    """The Flask app (gunicorn ``'benchmarks.http_app:create_flask()'``)."""
    from flask import Flask, Response

    from embedauth.adapters.flask import EmbedAuthFlask, require_scopes

    app = Flask("embedauth-bench")

    def devices() -> Response:
        return Response(BODY, content_type="application/json")

    if _kind(("bare", "protected")) == "bare":
        app.get("/devices")(devices)
        return app
    auth = _auth()
    EmbedAuthFlask(app, verifier=auth, realm=auth.settings.issuer)
    app.get("/devices")(require_scopes(SCOPE)(devices))
    return app
