"""The apps ``benchmarks/http.py`` serves: the same JSON endpoint, bare or behind embedauth's bearer check.

* Starlette, under uvicorn: ``uvicorn --factory benchmarks.http_app:create``;
* Flask, under gunicorn: ``gunicorn 'benchmarks.http_app:create_flask()'``.

``EMBEDAUTH_BENCH_APP`` picks ``bare`` (the endpoint, nothing else) or ``protected`` (the same
endpoint behind :class:`~embedauth.adapters.starlette.BearerMiddleware` and
:func:`~embedauth.adapters.starlette.requires_scopes`, or Flask's
:func:`~embedauth.adapters.flask.require_scopes`, needing ``devices:read``). A protected app
reads ``EMBEDAUTH_STORAGE`` and ``EMBEDAUTH_ISSUER`` (:meth:`Settings.from_env`) and keeps its
revocation state current in the background, as a deployed API does.
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


def _kind() -> str:
    kind = os.environ.get("EMBEDAUTH_BENCH_APP", "bare")
    if kind not in ("bare", "protected"):
        raise ValueError(f"EMBEDAUTH_BENCH_APP must be bare or protected, not {kind!r}")
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

    if _kind() == "bare":
        return Starlette(routes=[Route("/devices", devices)])
    auth = _auth()
    middleware = [Middleware(BearerMiddleware, verifier=auth, realm=auth.settings.issuer)]
    return Starlette(routes=[Route("/devices", requires_scopes(SCOPE)(devices))], middleware=middleware)


def create_flask() -> Any:
    """The Flask app (gunicorn ``'benchmarks.http_app:create_flask()'``)."""
    from flask import Flask, Response

    from embedauth.adapters.flask import EmbedAuthFlask, require_scopes

    app = Flask("embedauth-bench")

    def devices() -> Response:
        return Response(BODY, content_type="application/json")

    if _kind() == "bare":
        app.get("/devices")(devices)
        return app
    auth = _auth()
    EmbedAuthFlask(app, verifier=auth, realm=auth.settings.issuer)
    app.get("/devices")(require_scopes(SCOPE)(devices))
    return app
