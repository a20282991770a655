"""Middleware-only mode: a RemoteVerifier that knows only the issuer's URL."""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import secrets
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from embedauth import ConfigurationError, EmbedAuth, InvalidToken, StorageError
from embedauth.adapters._common import OAuthRoute, oauth_routes
from embedauth.adapters.starlette import BearerMiddleware
from embedauth.clock import FrozenClock
from embedauth.http.messages import Request
from embedauth.remote import RemoteVerifier, metadata_url
from embedauth.tokens.remote import MAX_DOCUMENT_BYTES, RemoteKeys, http_fetch
from tests.adapters.apps import asgi_client
from tests.conftest import TEST_SETTINGS
from tests.services import storage_url

#: The refresh floor of these tests: short, so that they wait little, and long next to a few verifications.
FLOOR = 0.3

Respond = Callable[[http.server.BaseHTTPRequestHandler], None]


class Server:
    """An HTTP server on 127.0.0.1 answering every GET with ``respond``, recording the paths asked for."""

    def __init__(self, respond: Respond) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                respond(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(
    handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, *headers: tuple[str, str]
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Issuer:
    """An EmbedAuth serving embedauth's own route table over real HTTP on 127.0.0.1.

    The issuer is ``http://127.0.0.1:<port><path>``, its endpoints mounted under ``path`` (where its
    metadata says they are). ``requests`` counts what was asked for. :meth:`hang` makes the server
    accept connections and read requests but never answer them.
    """

    def __init__(self, clock: FrozenClock, url: str = "memory://", path: str = "") -> None:
        self._hanging = threading.Event()
        self._released = threading.Event()
        self._routes: dict[str, OAuthRoute] = {}
        self._http = Server(self._respond)
        self.requests = self._http.requests
        self.url = self._http.origin + path
        self.auth = EmbedAuth(url, clock=clock, issuer=self.url, **TEST_SETTINGS)
        self._routes.update((route.path, route) for route in oauth_routes(self.auth, path))

    def _respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if self._hanging.is_set():
            self._released.wait(30)  # then the connection closes, unanswered
            return
        route = self._routes.get(handler.path.partition("?")[0])
        if route is None:
            reply(handler, 404, b"not found")
            return
        response = route.handle(Request("GET", self._http.origin + handler.path, {}))
        reply(handler, response.status, response.content(), *response.headers)

    def hang(self) -> None:
        self._hanging.set()

    def token(self) -> tuple[str, str]:
        made = self.auth.registrations.create(tenant="site-1", name="Job")
        return made.client_id, self.auth.tokens.client_credentials(
            made.client_id, made.client_secret
        ).access_token

    def close(self) -> None:
        self._released.set()
        self._http.close()
        self.auth.close()


@pytest.fixture
def issuer(clock: FrozenClock) -> Iterator[Issuer]:
    served = Issuer(clock)
    yield served
    served.close()


def forged_kid(token: str, kid: str = "forged") -> str:
    head, body, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["kid"] = kid
    new_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{new_head}.{body}.{signature}"


def eventually(condition: Callable[[], bool], within: float = 2.0) -> bool:
    """Whether ``condition()`` becomes true within ``within`` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def accepts(remote: RemoteVerifier, token: str) -> bool:
    try:
        remote.verify(token)
    except InvalidToken:
        return False
    return True


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


# ---------------------------------------------------------------------------- 1. get() is memory only


def test_new_key_fetched_in_the_background_on_unknown_kid_with_a_floor(
    issuer: Issuer, clock: FrozenClock
) -> None:
    _, token = issuer.token()
    remote = RemoteVerifier(issuer.url, clock=clock, refresh_floor=FLOOR)
    remote.verify(token)
    issuer.auth.keys.rotate()
    clock.advance(600)
    _, new_token = issuer.token()
    time.sleep(FLOOR)
    with pytest.raises(InvalidToken):  # an unknown kid: refused at once, the fetch starts behind it
        remote.verify(new_token)
    assert eventually(lambda: accepts(remote, new_token)), "the background fetch did not land"
    assert len(issuer.requests) == 4
    for _ in range(20):  # forged kids within the floor: no fetch at all
        with pytest.raises(InvalidToken):
            remote.verify(forged_kid(new_token))
    time.sleep(0.1)
    assert len(issuer.requests) == 4
    time.sleep(FLOOR)
    with pytest.raises(InvalidToken):
        remote.verify(forged_kid(new_token))
    assert eventually(lambda: len(issuer.requests) == 6)  # once the floor has passed, one more fetch
    for _ in range(20):
        with pytest.raises(InvalidToken):
            remote.verify(forged_kid(new_token))
    time.sleep(0.1)
    assert len(issuer.requests) == 6


def test_get_never_waits_and_runs_one_refresh_at_a_time(issuer: Issuer) -> None:
    prepared, release = threading.Event(), threading.Event()
    refreshes: list[str] = []

    def fetch(url: str) -> bytes:
        if prepared.is_set():  # every fetch after prepare's waits until released
            refreshes.append(url)
            release.wait(2)
        return http_fetch(url)

    keys = RemoteKeys(issuer.url, algorithms=("ES256",), refresh_floor=0.0, fetch=fetch)
    keys.prepare()
    prepared.set()
    (kid,) = (key["kid"] for key in issuer.auth.jwks()["keys"])
    began = time.monotonic()
    for _ in range(200):
        assert keys.get("unknown") is None
        assert time.monotonic() - began < 0.5, "get() waited for the network"
    assert keys.get(kid) is not None
    assert eventually(lambda: len(refreshes) == 1)
    time.sleep(0.1)
    assert refreshes == [metadata_url(issuer.url)]  # one refresh at a time, however many misses
    release.set()
    assert eventually(lambda: len(issuer.requests) == 4)  # the refresh completes once released


def test_an_old_key_set_is_refreshed_in_the_background(issuer: Issuer) -> None:
    served = {"withdrawn": False}

    def fetch(url: str) -> bytes:
        if url.endswith("jwks.json") and served["withdrawn"]:
            return b'{"keys": []}'
        return http_fetch(url)

    keys = RemoteKeys(issuer.url, algorithms=("ES256",), refresh_floor=FLOOR, max_age=FLOOR, fetch=fetch)
    keys.prepare()
    (kid,) = (key["kid"] for key in issuer.auth.jwks()["keys"])
    served["withdrawn"] = True
    assert keys.get(kid) is not None  # younger than max_age: no refresh
    time.sleep(0.1)
    assert len(issuer.requests) == 2
    time.sleep(FLOOR)
    assert keys.get(kid) is not None  # older: still answered from memory, refreshed behind
    assert eventually(lambda: keys.get(kid) is None), "the withdrawn key still verifies"


def test_failed_fetches_count_toward_the_floor(issuer: Issuer, clock: FrozenClock) -> None:
    down = threading.Event()
    attempts: list[float] = []

    def fetch(url: str) -> bytes:
        if url == metadata_url(issuer.url):
            attempts.append(time.monotonic())
        if down.is_set():
            raise ConnectionRefusedError("the issuer is down")
        return http_fetch(url)

    _, token = issuer.token()
    remote = RemoteVerifier(issuer.url, clock=clock, refresh_floor=FLOOR, fetch=fetch)
    remote.verify(token)
    down.set()
    attempts.clear()
    forged = forged_kid(token)
    flood = 1.0
    until = time.monotonic() + flood
    count = 0
    while time.monotonic() < until:
        with pytest.raises(InvalidToken):
            remote.verify(forged)
        count += 1
    time.sleep(0.05)
    assert count > 1000
    assert 2 <= len(attempts) <= flood / FLOOR + 1, attempts  # failures are retried, but only so often
    assert all(later - earlier >= FLOOR for earlier, later in itertools.pairwise(attempts))
    assert remote.verify(token)  # the keys known before the outage still verify


def test_first_fetch_failure_is_a_storage_error_then_retried(issuer: Issuer, clock: FrozenClock) -> None:
    reachable = threading.Event()
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        if not reachable.is_set():
            raise ConnectionRefusedError("the issuer is down")
        return http_fetch(url)

    keys = RemoteKeys(issuer.url, algorithms=("ES256",), refresh_floor=FLOOR, fetch=fetch)
    with pytest.raises(StorageError, match="cannot fetch the keys"):
        keys.prepare()
    assert not keys.ready
    reachable.set()
    with pytest.raises(StorageError):  # within the floor: not tried again
        keys.prepare()
    assert len(calls) == 1
    time.sleep(FLOOR)
    keys.prepare()
    assert keys.ready and len(calls) == 3

    _, token = issuer.token()
    remote = RemoteVerifier(issuer.url, clock=clock, fetch=_refused)
    with pytest.raises(StorageError):
        remote.prepare()
    assert not remote.ready
    with pytest.raises(StorageError):  # not "invalid token": the adapters answer 503
        remote.verify(token)


def _refused(url: str) -> bytes:
    raise ConnectionRefusedError(url)


def test_issuer_down_is_a_503_not_a_401(clock: FrozenClock) -> None:
    remote = RemoteVerifier("http://127.0.0.1:9", clock=clock)
    with pytest.raises(StorageError):
        remote.verify("a.b.c")
    app = Starlette(middleware=[Middleware(BearerMiddleware, verifier=remote, realm="api")])

    async def get() -> int:
        async with asgi_client(app) as client:
            response = await client.get("/", headers={"Authorization": "Bearer a.b.c"})
        return response.status_code

    assert anyio.run(get) == 503


def test_wrong_issuer_in_metadata_is_refused(issuer: Issuer, clock: FrozenClock) -> None:
    _, token = issuer.token()
    other = issuer.url.replace("127.0.0.1", "localhost")
    remote = RemoteVerifier(other, clock=clock)
    with pytest.raises(StorageError, match="metadata names issuer"):
        remote.verify(token)
    assert not remote.ready


# ---------------------------------------------------------------------------- 2. redirects are refused


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_refused(status: int) -> None:
    target = Server(lambda handler: reply(handler, 200, b'{"keys": []}'))
    origin = Server(lambda handler: reply(handler, status, b"", ("Location", target.origin + "/jwks.json")))
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_fetch(origin.origin + "/jwks.json")
        assert refused.value.code == status
        assert origin.requests == ["/jwks.json"] and target.requests == []  # never followed
    finally:
        origin.close()
        target.close()


def test_a_redirected_issuer_is_not_followed(issuer: Issuer, clock: FrozenClock) -> None:
    """Metadata served at another URL is never read, even metadata that would check out."""
    jwks = json.dumps(issuer.auth.jwks()).encode()
    origins: list[str] = []

    def elsewhere_respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/.well-known/oauth-authorization-server"):
            metadata = {"issuer": origins[0], "jwks_uri": elsewhere.origin + "/jwks.json"}
            reply(handler, 200, json.dumps(metadata).encode())
        else:
            reply(handler, 200, jwks)

    elsewhere = Server(elsewhere_respond)
    origin = Server(lambda handler: reply(handler, 302, b"", ("Location", elsewhere.origin + handler.path)))
    origins.append(origin.origin)
    try:
        remote = RemoteVerifier(origin.origin, clock=clock)
        with pytest.raises(StorageError, match="redirect"):
            remote.prepare()
        assert origin.requests == ["/.well-known/oauth-authorization-server"]
        assert elsewhere.requests == []
    finally:
        origin.close()
        elsewhere.close()


def test_documents_are_bounded() -> None:
    big = Server(lambda handler: reply(handler, 200, b" " * (MAX_DOCUMENT_BYTES + 1)))
    try:
        with pytest.raises(ValueError, match="larger than"):
            http_fetch(big.origin + "/")
    finally:
        big.close()


def test_only_https_or_loopback() -> None:
    with pytest.raises(ConfigurationError):
        RemoteVerifier("http://api.example.com")
    assert metadata_url("https://api.example.com/tenant/") == (
        "https://api.example.com/.well-known/oauth-authorization-server/tenant"
    )


# ---------------------------------------------------------------------------- 3. an issuer with a path


def test_an_issuer_with_a_path_is_discovered(clock: FrozenClock) -> None:
    served = Issuer(clock, path="/auth")
    try:
        client_id, token = served.token()
        remote = RemoteVerifier(served.url, clock=clock)
        assert remote.verify(token).client_id == client_id
        assert served.requests == [
            "/.well-known/oauth-authorization-server/auth",  # RFC 8414 §3.1
            "/auth/.well-known/jwks.json",
        ]
    finally:
        served.close()


# ---------------------------------------------------------------------------- 4. verify never blocks


def test_verify_never_waits_for_a_hanging_issuer(issuer: Issuer) -> None:
    _, token = issuer.token()
    remote = RemoteVerifier(issuer.url, refresh_floor=FLOOR)  # the system clock: floors pass for real
    remote.prepare()
    assert len(issuer.requests) == 2
    issuer.hang()
    forged = [forged_kid(token, secrets.token_urlsafe(8)) for _ in range(1000)]
    time.sleep(FLOOR)  # past the floor: the first unknown kid starts a fetch, which hangs
    began = time.monotonic()
    for each in forged:
        with pytest.raises(InvalidToken):
            remote.verify(each)
        assert time.monotonic() - began < 1.0, "verify waited for the network"
    assert eventually(lambda: len(issuer.requests) == 3)  # the one fetch, hanging in the background
    time.sleep(0.1)
    assert len(issuer.requests) == 3


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
