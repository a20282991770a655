"""An issuer with a path has its metadata where RFC 8414 §3.1 and OpenID Connect Discovery look,
in both adapters (they share one route table)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import flask
import pytest
from starlette.applications import Starlette

from embedauth.adapters.flask import EmbedAuthFlask
from embedauth.adapters.starlette import oauth_routes
from embedauth.clock import FrozenClock
from tests.adapters.apps import ISSUER, Client, FlaskClient, StarletteClient, open_auth

WITH_PATH = ISSUER + "/auth"
WHERE_LOOKED = (
    "/.well-known/oauth-authorization-server/auth",  # RFC 8414 §3.1
    "/.well-known/openid-configuration/auth",  # the same rule, for openid-configuration
    "/auth/.well-known/openid-configuration",  # OpenID Connect Discovery 1.0 §4
)


@contextmanager
def endpoints(framework: str, clock: FrozenClock, issuer: str) -> Iterator[Client]:
    """The OAuth endpoints of an EmbedAuth issuing as ``issuer``, in ``framework``."""
    with open_auth(clock, issuer=issuer) as auth:
        if framework == "starlette":
            yield StarletteClient(Starlette(routes=oauth_routes(auth)))
        else:
            app = flask.Flask(__name__)
            EmbedAuthFlask(app, auth)
            yield FlaskClient(app)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_metadata_of_an_issuer_with_a_path(clock: FrozenClock, framework: str) -> None:
    with endpoints(framework, clock, WITH_PATH) as client:
        root = client.send("GET", "/.well-known/oauth-authorization-server")
        assert root.status == 200 and root.json()["issuer"] == WITH_PATH
        for path in WHERE_LOOKED:
            reply = client.send("GET", path)
            assert (reply.status, reply.body) == (200, root.body), path


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_an_issuer_without_a_path_has_no_such_routes(clock: FrozenClock, framework: str) -> None:
    with endpoints(framework, clock, ISSUER) as client:
        assert client.send("GET", "/.well-known/oauth-authorization-server").status == 200
        for path in WHERE_LOOKED:
            assert client.send("GET", path).status == 404, path
