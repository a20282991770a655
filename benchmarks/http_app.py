"""The apps ``benchmarks/http.py`` serves with uvicorn: ``uvicorn --factory benchmarks.http_app:create``.

``EMBEDAUTH_BENCH_APP`` picks one: ``plain`` (a JSON endpoint, nothing else), ``protected`` (the same
endpoint behind the bearer middleware), ``token`` (the same endpoint beside the OAuth endpoints).
``EMBEDAUTH_STORAGE`` and ``EMBEDAUTH_ISSUER`` configure the EmbedAuth.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from embedauth import EmbedAuth, Settings
from embedauth.adapters.starlette import BearerMiddleware, oauth_routes

BODY = b'{"devices":[{"id":"dev-1","name":"Front door camera"}]}'


async def devices(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


def create() -> Starlette:
    kind = os.environ["EMBEDAUTH_BENCH_APP"]
    routes = [Route("/devices", devices)]
    if kind == "plain":
        return Starlette(routes=routes)
    auth = EmbedAuth(settings=Settings.from_env())
    if kind == "protected":
        auth.revocations.start()
        middleware = [Middleware(BearerMiddleware, verifier=auth, realm=auth.settings.issuer)]
        return Starlette(routes=routes, middleware=middleware)
    return Starlette(routes=[*routes, *oauth_routes(auth)])
