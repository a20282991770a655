"""Middleware-only mode: a RemoteVerifier that knows only the issuer's URL."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embedauth import ConfigurationError, EmbedAuth, InvalidToken
from embedauth.clock import FrozenClock
from embedauth.http.messages import Request
from embedauth.http.oauth import OAuthEndpoints
from embedauth.remote import RemoteVerifier, metadata_url
from tests.conftest import TEST_SETTINGS
from tests.services import storage_url


class Issuer:
    """An EmbedAuth serving its metadata and JWKS over real HTTP on 127.0.0.1, counting requests."""

    def __init__(self, clock: FrozenClock, url: str = "memory://") -> None:
        self.requests: list[str] = []
        endpoints_holder: list[OAuthEndpoints] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                endpoints = endpoints_holder[0]
                request = Request("GET", self.path, {})
                handle = endpoints.jwks if self.path.endswith("jwks.json") else endpoints.metadata
                response = handle(request)
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.json_bytes())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.auth = EmbedAuth(url, clock=clock, issuer=self.url, **TEST_SETTINGS)
        endpoints_holder.append(OAuthEndpoints(self.auth))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self) -> tuple[str, str]:
        made = self.auth.registrations.create(tenant="site-1", name="Job")
        return made.client_id, self.auth.tokens.client_credentials(
            made.client_id, made.client_secret
        ).access_token

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.auth.close()


@pytest.fixture
def issuer(clock: FrozenClock) -> Iterator[Issuer]:
    served = Issuer(clock)
    yield served
    served.close()


def test_verifies_with_the_published_keys(issuer: Issuer, clock: FrozenClock) -> None:
    client_id, token = issuer.token()
    remote = RemoteVerifier(issuer.url, clock=clock)
    principal = remote.verify(token)
    assert principal.client_id == client_id and principal.tenant == "site-1"
    assert issuer.requests == ["/.well-known/oauth-authorization-server", "/.well-known/jwks.json"]
    remote.verify(token)
    _, other = issuer.token()
    remote.verify(other)
    assert len(issuer.requests) == 2  # no network in steady state


def test_new_key_fetched_on_unknown_kid_with_a_floor(issuer: Issuer, clock: FrozenClock) -> None:
    _, token = issuer.token()
    remote = RemoteVerifier(issuer.url, clock=clock, refresh_floor=10.0)
    remote.verify(token)
    issuer.auth.keys.rotate()
    clock.advance(600)
    _, new_token = issuer.token()
    assert remote.verify(new_token)  # an unknown kid, 600 s after the last fetch: fetched again
    assert len(issuer.requests) == 4
    for _ in range(20):  # forged kids within the floor: no fetch at all
        with pytest.raises(InvalidToken):
            remote.verify(forged_kid(new_token))
    assert len(issuer.requests) == 4
    clock.advance(10)
    with pytest.raises(InvalidToken):
        remote.verify(forged_kid(new_token))
    assert len(issuer.requests) == 6  # once the floor has passed, one more fetch


def forged_kid(token: str) -> str:
    import base64
    import json

    head, body, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["kid"] = "forged"
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{body}.{signature}"


def test_wrong_issuer_in_metadata_is_refused(issuer: Issuer, clock: FrozenClock) -> None:
    _, token = issuer.token()
    other = issuer.url.replace("127.0.0.1", "localhost")
    remote = RemoteVerifier(other, clock=clock)
    with pytest.raises(InvalidToken):
        remote.verify(token)


def test_issuer_down_refuses_cleanly(clock: FrozenClock) -> None:
    remote = RemoteVerifier("http://127.0.0.1:9", clock=clock)
    with pytest.raises(InvalidToken):
        remote.verify("a.b.c")


def test_only_https_or_loopback() -> None:
    with pytest.raises(ConfigurationError):
        RemoteVerifier("http://api.example.com")
    assert metadata_url("https://api.example.com/tenant/") == (
        "https://api.example.com/.well-known/oauth-authorization-server/tenant"
    )


@pytest.mark.parametrize(
    "backend",
    [pytest.param("redis", marks=pytest.mark.redis), pytest.param("postgres", marks=pytest.mark.postgres)],
)
def test_revocation_through_the_shared_feed(clock: FrozenClock, tmp_path: Path, backend: str) -> None:
    with storage_url(backend, tmp_path) as url:
        served = Issuer(clock, url)
        try:
            client_id, token = served.token()
            remote = RemoteVerifier(served.url, clock=clock, revocation_storage=url)
            assert remote.verify(token)
            served.auth.registrations.disable(client_id)
            deadline = threading.Event()
            for _ in range(100):
                try:
                    remote.verify(token)
                except InvalidToken:
                    break
                deadline.wait(0.01)
            else:
                pytest.fail("the disable did not reach the remote verifier within 1 s")
            remote.close()
        finally:
            served.close()
