"""Shared steps of the outage tests: clients and tokens, timed requests, refusals awaited, and the
checks every test ends with (serve alive, never a 500, no traceback but a logged storage warning).

Every request goes through :class:`Http`, which times it and records its status in a
:class:`Traffic` shared by every thread of a test, so that "no response was ever a 500" covers the
background samplers and floods too.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from embedauth import EmbedAuth
from tests.conftest import TEST_SETTINGS
from tests.faults.servers import PostgresCluster, RedisServer, ServeProcess, wait_until
from tests.integration.conftest import child_env, run_cli

__all__ = [
    "HTTP_TIMEOUT",
    "MARGIN",
    "MAX_STALENESS",
    "PERMISSION",
    "POLL_INTERVAL",
    "REFUSAL_LIMIT",
    "SERVE_ENV",
    "STORAGE_TIMEOUT",
    "Answer",
    "Client",
    "Flood",
    "Http",
    "Sampler",
    "Traffic",
    "admin",
    "assert_fail_closed",
    "assert_unavailable",
    "check_serve",
    "cli_disable",
    "forged",
    "new_client",
    "p99",
    "postgres_feeds",
    "redis_feeds",
    "refusal_delay",
    "report",
    "token_of",
    "unexpected_tracebacks",
    "wait_one_feed",
    "wait_ready",
]

#: Short settings, so that a test sees a whole outage in seconds.
STORAGE_TIMEOUT = 1.0
MAX_STALENESS = 3.0
POLL_INTERVAL = 0.2
SERVE_ENV = {
    "EMBEDAUTH_STORAGE_TIMEOUT": str(STORAGE_TIMEOUT),
    "EMBEDAUTH_MAX_STALENESS": str(MAX_STALENESS),
    "EMBEDAUTH_REVOCATION_POLL_INTERVAL": str(POLL_INTERVAL),
    # Every token request reads its registration, so each outage reaches the token endpoint at
    # once: what these tests time. With the registration view (the default), a client that
    # authenticated before still gets tokens from memory until the feed reports the outage or the
    # state is max(1 s, 3 polls) old (tests/registry/test_view.py).
    "EMBEDAUTH_REGISTRATION_CACHE_SIZE": "0",
}
#: Scheduling slack on top of the storage timeout (two processes on a small CI machine).
MARGIN = 0.5
#: A disable made in another process is refused by serve within this many seconds.
REFUSAL_LIMIT = 1.0
PERMISSION = "demo:read"
#: httpx's own timeouts: far above anything serve may take, so a hang shows as a measured latency.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def report(test: str, **figures: object) -> None:
    """Print the measured figures of a test (``pytest -s`` shows them)."""
    shown = ", ".join(
        f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}"
        for name, value in figures.items()
    )
    print(f"\n[figures] {test}: {shown}")


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


# ---------------------------------------------------------------------------- clients


@dataclass(frozen=True, slots=True)
class Client:
    """A registration's client ID and a secret of it."""

    client_id: str
    secret: str = field(repr=False)


@contextmanager
def admin(url: str) -> Iterator[EmbedAuth]:
    """An :class:`EmbedAuth` of the test process over ``url``: another process than serve."""
    with EmbedAuth(url, storage_timeout=STORAGE_TIMEOUT, **TEST_SETTINGS) as auth:
        yield auth


def new_client(auth: EmbedAuth, name: str) -> Client:
    """A new registration holding :data:`PERMISSION` (added to the catalog if it is not there)."""
    if not any(permission.name == PERMISSION for permission in auth.permissions.list()):
        auth.permissions.add(PERMISSION, description="the fault tests' permission")
    created = auth.registrations.create(tenant="faults", name=name, scopes=[PERMISSION])
    return Client(created.client_id, created.client_secret)


def cli_disable(storage_url: str, client_id: str) -> None:
    """``embedauth registrations disable CLIENT_ID``, as an admin would type it."""
    env = child_env(EMBEDAUTH_STORAGE_TIMEOUT=str(STORAGE_TIMEOUT))
    done = run_cli("--storage", storage_url, "registrations", "disable", client_id, env=env)
    assert done.returncode == 0, f"embedauth registrations disable failed:\n{done.stdout}{done.stderr}"


def forged(token: str) -> str:
    """``token`` with a random ``kid`` in its header and a garbage signature of the same length."""
    header_text, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_text + "=" * (-len(header_text) % 4)))
    header["kid"] = secrets.token_urlsafe(16)
    encoded = base64.urlsafe_b64encode(json.dumps(header, separators=(",", ":")).encode()).rstrip(b"=")
    garbage = base64.urlsafe_b64encode(secrets.token_bytes(len(signature) * 3 // 4)).rstrip(b"=")
    return f"{encoded.decode()}.{payload}.{garbage.decode()}"


# ---------------------------------------------------------------------------- push feeds


def redis_feeds(server: RedisServer) -> int:
    """How many connections to ``server`` are an embedauth change feed, subscribed (``CLIENT LIST``)."""
    with server.client() as client:
        listed = client.client_list()
    return sum(
        1 for c in listed if c.get("name", "").startswith("embedauth-feed-") and int(c.get("sub", 0)) > 0
    )


def postgres_feeds(cluster: PostgresCluster) -> int:
    """How many connections to ``cluster`` are an embedauth change feed that has run ``LISTEN``."""
    with cluster.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s AND query LIKE %s",
            ("% feed-%", "LISTEN %"),
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_one_feed(count: Callable[[], int], timeout: float = 5.0) -> float:
    """Wait until exactly one change feed (serve's) is connected; the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: count() == 1, timeout=timeout, interval=0.05, message="serve's change feed connected")
    return time.monotonic() - started


# ---------------------------------------------------------------------------- HTTP


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of serve: what it said, when the request was sent, and how long it took."""

    path: str
    status: int
    headers: httpx.Headers
    text: str
    sent: float  # time.monotonic() when sent
    elapsed: float  # seconds until the whole answer had arrived

    def json(self) -> Any:
        return json.loads(self.text)

    def __str__(self) -> str:
        return f"{self.path} -> {self.status} in {self.elapsed * 1000:.1f} ms: {self.text[:300]}"


class Traffic:
    """Every status serve answered in one test, from every thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[Answer] = []

    def record(self, answer: Answer) -> None:
        with self._lock:
            self.statuses[answer.path, answer.status] += 1
            if answer.status >= 500 and answer.status != 503:
                self.server_errors.append(answer)


class Http:
    """An HTTP client of one serve process (one per thread), timing and recording every request."""

    def __init__(self, served: ServeProcess, traffic: Traffic) -> None:
        self._served = served
        self._traffic = traffic
        self._client = httpx.Client(base_url=served.base_url, timeout=HTTP_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, **options: Any) -> Answer:
        sent = time.monotonic()
        response = self._client.request(method, path, **options)
        answer = Answer(
            path, response.status_code, response.headers, response.text, sent, time.monotonic() - sent
        )
        self._traffic.record(answer)
        return answer

    def token(self, client: Client) -> Answer:
        """``POST /oauth/token`` (client credentials, HTTP Basic)."""
        return self.request(
            "POST",
            "/oauth/token",
            auth=(client.client_id, client.secret),
            data={"grant_type": "client_credentials"},
        )

    def whoami(self, token: str) -> Answer:
        """``GET /demo/whoami`` with ``token``."""
        return self.request("GET", "/demo/whoami", headers={"Authorization": f"Bearer {token}"})

    def health(self) -> Answer:
        """``GET /healthz``."""
        return self.request("GET", "/healthz")


def token_of(http: Http, client: Client) -> str:
    """An access token of ``client`` from serve (which must answer 200)."""
    answer = http.token(client)
    assert answer.status == 200, str(answer)
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


def assert_unavailable(answer: Answer, *, within: float) -> None:
    """``answer`` is the documented outage answer, in time: 503, ``Retry-After: 1``, and a JSON body,
    ``{"error": "temporarily_unavailable"}`` (``/healthz``: its report, ``"status": "unavailable"``)."""
    assert answer.status == 503, str(answer)
    assert answer.headers.get("retry-after") == "1", f"no Retry-After: {answer.headers}"
    assert answer.headers.get("content-type", "").startswith("application/json"), str(answer.headers)
    body = answer.json()
    if answer.path == "/healthz":
        assert body["status"] == "unavailable", str(answer)
    else:
        assert body == {"error": "temporarily_unavailable"}, str(answer)
    assert answer.elapsed < within, f"{answer.path} took {answer.elapsed:.3f} s (limit {within} s): {answer}"


def refusal_delay(http: Http, token: str, since: float, *, give_up: float = 5.0) -> float:
    """Poll ``/demo/whoami`` every 20 ms until ``token`` is refused (401 ``invalid_token``).

    Returns the seconds from ``since`` (a disable returned) to the first refusal's answer; every
    answer before it must be a 200. Gives up (AssertionError) after ``give_up`` seconds.
    """
    while True:
        answer = http.whoami(token)
        if answer.status == 401:
            assert "invalid_token" in answer.headers.get("www-authenticate", ""), str(answer)
            return answer.sent + answer.elapsed - since
        assert answer.status == 200, f"before the refusal: {answer}"
        assert time.monotonic() - since < give_up, (
            f"the token was still accepted {give_up} s after the disable"
        )
        time.sleep(0.02)


def wait_ready(http: Http, timeout: float = 10.0) -> float:
    """Wait until ``/healthz`` is 200; the seconds it took."""
    started = time.monotonic()
    wait_until(lambda: http.health().status == 200, timeout=timeout, interval=0.05, message="/healthz 200")
    return time.monotonic() - started


# ---------------------------------------------------------------------------- background traffic


class _Worker:
    """A daemon thread with its own :class:`Http`, run until :meth:`stop`; its exception is re-raised."""

    def __init__(self, served: ServeProcess, traffic: Traffic) -> None:
        self._http = Http(served, traffic)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=type(self).__name__, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(self._http)
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self._error = exc
        finally:
            self._http.close()

    def step(self, http: Http) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the thread; raise what it raised."""
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), f"{type(self).__name__} did not stop"
        if self._error is not None:
            raise self._error


class Sampler(_Worker):
    """``GET /demo/whoami`` with one token every ``interval`` seconds, every answer kept."""

    def __init__(self, served: ServeProcess, traffic: Traffic, token: str, interval: float = 0.05) -> None:
        super().__init__(served, traffic)
        self.token = token
        self.interval = interval
        self.answers: list[Answer] = []

    def step(self, http: Http) -> None:
        self.answers.append(http.whoami(self.token))
        self._stop.wait(self.interval)


class Flood(_Worker):
    """Tokens with forged kids, as fast as one thread can send them; the statuses counted."""

    def __init__(self, served: ServeProcess, traffic: Traffic, token: str) -> None:
        super().__init__(served, traffic)
        self.token = token
        self.statuses: Counter[int] = Counter()

    def step(self, http: Http) -> None:
        self.statuses[http.whoami(forged(self.token)).status] += 1


def assert_fail_closed(
    answers: Sequence[Answer], *, began: float, complete: float, max_staleness: float = MAX_STALENESS
) -> float:
    """Verification during an outage that began between ``began`` and ``complete``: 200 while the
    outage is shorter than ``max_staleness`` (less a margin), then 503 with ``Retry-After`` (never
    401, never a 200 again). Returns the seconds from ``began`` to the first 503."""
    during = sorted((answer for answer in answers if answer.sent >= began), key=lambda answer: answer.sent)
    gaps = [later.sent - earlier.sent for earlier, later in itertools.pairwise(during)]
    assert max(gaps) < 2 * MARGIN, f"no sample for {max(gaps):.3f} s: the samples do not cover the outage"
    early = [a for a in during if a.sent + a.elapsed < began + max_staleness - MARGIN]
    late = [a for a in during if a.sent > complete + max_staleness + MARGIN]
    assert len(early) >= 10 and len(late) >= 3, f"too few samples: {len(early)} early, {len(late)} late"
    assert all(a.status == 200 for a in early), [str(a) for a in early if a.status != 200]
    for answer in late:
        assert_unavailable(answer, within=MARGIN)  # from memory: no storage wait
    statuses = [answer.status for answer in during]
    assert set(statuses) <= {200, 503}, Counter(statuses)
    first = statuses.index(503)
    assert 200 not in statuses[first:], "a 200 after the state was declared too old"
    return during[first].sent - began


# ---------------------------------------------------------------------------- serve's health after the test

#: The only warning logged with a traceback: adapters/_common.py ``unavailable`` (exc_info=True, at most
#: once every ten seconds), whose exception is always the StorageError the adapter caught.
_STORAGE_WARNING = re.compile(r"(?:^|\s)embedauth: storage unavailable for \S+ \S+")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def unexpected_tracebacks(output: str) -> list[str]:
    """The tracebacks in serve's ``output`` that are not a logged storage warning's ``exc_info``.

    serve configures no logging handler of its own, so embedauth's warnings reach Python's
    last-resort handler: the message on one line, then, with ``exc_info``, the traceback right
    below it, chained exceptions first, each later one after a blank line, "The above exception
    was the direct cause of the following exception:" (or "During handling ...") and a blank line.
    A chain is accepted only when (1) the line above it is the adapters' "storage unavailable for
    METHOD PATH" warning (``adapters/_common.py`` ``unavailable``, the only ``exc_info`` warning,
    logged at most once every ten seconds), and (2) its last exception is
    ``embedauth.errors.StorageError``: that warning is logged only in an ``except StorageError``.
    So anything else (an uncaught error in uvicorn's "Exception in ASGI application", the
    revocation thread's ``log.exception``, a thread's unhandled exception) is reported. Exception
    messages may span lines (libpq's do): only the structure above is relied on.
    """
    lines = output.splitlines()
    headers = [index for index, line in enumerate(lines) if line == _TRACEBACK]
    chains: list[list[int]] = []  # each: the header indexes of one chain
    for index in headers:
        chained = index >= 2 and lines[index - 1] == "" and lines[index - 2] in _CHAINED
        if chained and chains:
            chains[-1].append(index)
        else:
            chains.append([index])
    found: list[str] = []
    for chain in chains:
        first, last = chain[0], chain[-1]
        owner = lines[first - 1] if first > 0 else ""
        end = last + 1
        while end < len(lines) and lines[end].startswith(" "):  # the frames
            end += 1
        final = lines[end] if end < len(lines) else ""
        if not (_STORAGE_WARNING.search(owner) and final.startswith("embedauth.errors.StorageError: ")):
            found.append("\n".join(lines[max(0, first - 1) : end + 1]))
    return found


def check_serve(served: ServeProcess, traffic: Traffic) -> None:
    """After a test: serve still runs, never answered a 500, and logged no traceback but storage warnings."""
    output = served.output()
    assert served.running, f"embedauth serve died:\n{output}"
    assert not traffic.server_errors, [str(answer) for answer in traffic.server_errors]
    unexpected = unexpected_tracebacks(output)
    assert not unexpected, "\n\n".join(unexpected)
    assert "Exception in ASGI application" not in output, output
    assert "revocation feed failed" not in output, output  # its log.exception: a bug, not an outage
    # An outage is one warning every 10 s per source, not one per retry or per forged kid.
    allowed = served.starts * (1 + (time.monotonic() - served.started_at) / 10)
    for warning in ("embedauth: revocation feed:", "embedauth: cannot re-read the signing keys"):
        assert output.count(warning) <= allowed, f"{output.count(warning)} x {warning!r}:\n{output}"
