"""The failure modes of docs/security.md, for real: ``embedauth serve`` while its storage dies, hangs,
comes back empty or from an older snapshot.

Each test runs ``embedauth serve`` (uvicorn, a subprocess) over a Redis server or a PostgreSQL
cluster of its own on a spare port (:mod:`tests.faults.servers`), with short settings
(:data:`~tests.faults.helpers.SERVE_ENV`: a 1 s storage timeout, 3 s of staleness allowed, a
0.2 s poll), and then kills, restarts, restores or hangs that server. Registrations are made and
disabled from this process (:func:`~tests.faults.helpers.admin`) or with the command, so every
change reaches serve through storage, as in a deployment.

What each proves is in its docstring; every test ends with :func:`~tests.faults.helpers.check_serve`
(serve alive, never a 500, no traceback but a logged storage warning's). ``pytest -s`` prints the
measured figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx
import pytest

from tests.faults.helpers import (
    HTTP_TIMEOUT,
    MARGIN,
    MAX_STALENESS,
    REFUSAL_LIMIT,
    SERVE_ENV,
    STORAGE_TIMEOUT,
    Answer,
    Client,
    Flood,
    Http,
    Sampler,
    Traffic,
    admin,
    assert_fail_closed,
    assert_unavailable,
    check_serve,
    cli_disable,
    new_client,
    p99,
    postgres_feeds,
    redis_feeds,
    refusal_delay,
    report,
    token_of,
    unexpected_tracebacks,
    wait_one_feed,
    wait_ready,
)
from tests.faults.servers import (
    HangMethod,
    PostgresCluster,
    RedisServer,
    ServeProcess,
    _process_state,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

Serve = Callable[..., ServeProcess]
#: Within the storage timeout, plus scheduling slack.
IN_TIME = STORAGE_TIMEOUT + MARGIN
#: How long an outage lasts: past max_staleness by enough samples to see the 503s.
OUTAGE = MAX_STALENESS + 3 * MARGIN


def _max(answers: list[Answer]) -> float:
    return max(answer.elapsed for answer in answers)


@contextlib.contextmanager
def frozen(served: ServeProcess) -> Iterator[None]:
    """serve stopped (SIGSTOP) meanwhile: it reads nothing, answers nothing; SIGCONT after."""
    assert served.process is not None
    pid = served.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _process_state(pid) in {"T", "t"}, timeout=5, interval=0.002)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# ---------------------------------------------------------------------------- Redis killed


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_redis_killed_then_started_empty(redis_server: RedisServer, serve: Serve, framework: str) -> None:
    """Redis killed while serve runs, then started again empty on the same port.

    While it is down: the token endpoint answers 503 with ``Retry-After`` and a JSON body within
    the storage timeout, for a client never seen and for one whose secret serve verified before
    (the secret cache spares argon2, not the registration read: ``ClientAuthenticator.check_secret``
    always calls ``storage.get_registration``, so the cached client gets the 503 as well);
    ``/healthz`` is 503; a token verified before keeps verifying from memory until the outage is
    ``max_staleness`` old, then gets 503, never 401. After the start: serve reconnects by itself;
    what it knew stays dead although the store lost it (a token disabled before the kill stays
    refused), a token nothing revoked verifies again; a registration made in the empty store gets
    tokens, and a disable made with the command is refused within a second.
    """
    url = redis_server.url(prefix="faults")
    served = serve(url, env=SERVE_ENV, framework=framework)
    traffic = Traffic()
    with admin(url) as auth, Http(served, traffic) as http:
        seen, unseen, paused = (new_client(auth, name) for name in ("seen", "unseen", "paused"))
        token, paused_token = token_of(http, seen), token_of(http, paused)
        assert http.whoami(token).status == 200
        auth.registrations.disable(paused.client_id)
        assert refusal_delay(http, paused_token, time.monotonic()) <= REFUSAL_LIMIT
        wait_ready(http)
        wait_one_feed(lambda: redis_feeds(redis_server))

        with Sampler(served, traffic, token) as sampler:
            killed = time.monotonic()
            redis_server.kill()
            complete = time.monotonic()
            tokens = [http.token(client) for _ in range(3) for client in (unseen, seen)]
            health = http.health()
            while time.monotonic() < complete + OUTAGE:
                time.sleep(0.05)
            stale_health = http.health()
        for answer in tokens:
            assert_unavailable(answer, within=IN_TIME)
        for answer in (health, stale_health):
            assert_unavailable(answer, within=IN_TIME)
            assert answer.json()["storage"]["reachable"] is False
        assert stale_health.json()["revocations"]["age_seconds"] > MAX_STALENESS
        fail_closed_after = assert_fail_closed(sampler.answers, began=killed, complete=complete)

        redis_server.start()  # empty: nothing was saved
        started = time.monotonic()
        recovered = wait_ready(http)
        feed_back = wait_one_feed(lambda: redis_feeds(redis_server)) + recovered
        assert http.whoami(paused_token).status == 401  # the store forgot the disable; serve did not
        assert http.whoami(token).status == 200, "nothing revoked it"
        again = new_client(auth, "again")  # the catalog too: the store is empty
        fresh_token = token_of(http, again)
        assert http.whoami(fresh_token).status == 200
        cli_disable(url, again.client_id)
        refused = refusal_delay(http, fresh_token, time.monotonic())
        assert refused <= REFUSAL_LIMIT, f"refused {refused:.3f} s after the disable"

    report(
        f"redis killed ({framework})",
        token_503_max=_max(tokens),
        health_503=health.elapsed,
        verify_503_after=fail_closed_after,
        ready_after_start=recovered,
        feed_after_start=feed_back,
        since_start=time.monotonic() - started,
        disable_to_refusal=refused,
    )
    check_serve(served, traffic)


# ---------------------------------------------------------------------------- Redis from an older snapshot

_WENT_BACK = re.compile(r"the revocation log went back \(epoch (\w+) seq (\d+), was (\w+) seq (\d+)\)")


def test_redis_restored_from_an_older_snapshot(redis_server: RedisServer, serve: Serve) -> None:
    """Finding 1 of the issue: a revoked token must not come back when the store's counter goes back.

    serve applies revocation entries up to seq ``seen``; Redis is then restored from a snapshot
    taken at seq ``snapshot`` < ``seen`` (same epoch: only the counter tells). serve logs that the
    log went back from ``seen`` (the proof that it had seen the later seqs), and what it knew stays
    dead. Then a disable of a registration that the snapshot holds gets seq ``snapshot + 1`` <=
    ``seen``, a seq serve had already seen, and more changes push the counter past ``seen``: serve
    must refuse the token within a second. While those writes are made serve is frozen (SIGSTOP),
    so that its next read certainly finds the counter past ``seen`` (were it to read in between,
    it would find the counter below its position and reload everything, hiding a reader that
    resumes from ``seen`` and so skips the disable until the next full reload, 60 s later).
    """
    url = redis_server.url(prefix="faults")
    served = serve(url, env=SERVE_ENV)
    traffic = Traffic()
    with admin(url) as auth, Http(served, traffic) as http:
        kept, churn = new_client(auth, "kept"), new_client(auth, "churn")
        token = token_of(http, kept)
        assert http.whoami(token).status == 200
        auth.registrations.rotate_secret(churn.client_id)  # the snapshot holds a log of its own
        snapshot_seq = auth.storage.revocation_head().seq
        snapshot = redis_server.snapshot()

        # After the snapshot: entries serve reads, the last one a disable it is seen to apply.
        for _ in range(3):
            churn = Client(churn.client_id, auth.registrations.rotate_secret(churn.client_id).client_secret)
        churn_token = token_of(http, churn)
        auth.registrations.disable(churn.client_id)
        seen_seq = auth.storage.revocation_head().seq
        assert refusal_delay(http, churn_token, time.monotonic()) <= REFUSAL_LIMIT
        assert seen_seq >= snapshot_seq + 4

        redis_server.restore(snapshot)
        restored = time.monotonic()
        head = auth.storage.revocation_head()
        assert head.seq == snapshot_seq  # the counter went back

        def reloaded() -> re.Match[str] | None:
            return _WENT_BACK.search(served.output())

        went_back = wait_until(reloaded, timeout=5, message="serve logging that the revocation log went back")
        epoch, now_seq, old_epoch, old_seq = went_back.groups()
        assert (epoch, old_epoch) == (head.epoch, head.epoch)  # a restore keeps the epoch
        assert (int(now_seq), int(old_seq)) == (snapshot_seq, seen_seq), went_back.group(0)
        reload_took = time.monotonic() - restored
        wait_ready(http)
        wait_one_feed(lambda: redis_feeds(redis_server))
        assert http.whoami(token).status == 200
        assert http.whoami(churn_token).status == 401  # what serve knew stays dead

        with frozen(served):
            auth.registrations.disable(kept.client_id)
            disable_seq = auth.storage.revocation_head().seq
            assert snapshot_seq < disable_seq <= seen_seq, "the disable's seq is one serve had seen before"
            while (passed_seq := auth.storage.revocation_head().seq) <= seen_seq:
                auth.registrations.rotate_secret(churn.client_id)
        resumed = time.monotonic()
        refused = refusal_delay(http, token, resumed)
        assert refused <= REFUSAL_LIMIT, f"refused {refused:.3f} s after serve resumed"

    report(
        "redis restored",
        snapshot_seq=snapshot_seq,
        seen_seq=seen_seq,
        disable_seq=disable_seq,
        head_when_serve_resumed=passed_seq,
        reload_after_restore=reload_took,
        resume_to_refusal=refused,
    )
    check_serve(served, traffic)


# ---------------------------------------------------------------------------- Redis hung

VERIFY_CALLS = 200
VERIFY_P99_LIMIT = 0.050


@pytest.mark.parametrize(
    ("method", "framework"), [("pause", "starlette"), ("sigstop", "starlette"), ("pause", "flask")]
)
def test_redis_hung(redis_server: RedisServer, serve: Serve, method: HangMethod, framework: str) -> None:
    """Redis hung (connections open, nothing answered) while serve runs, then resumed.

    While hung: a token verified before keeps verifying as fast as before, 200 sequential calls
    with a p99 under 50 ms and none near the storage timeout, while another thread sends tokens
    with forged kids as fast as it can (each refused at once: an unknown kid never waits for the
    key ring's re-read) and a third asks for tokens, which answer 503 within the storage timeout;
    ``/healthz`` answers 503 within the timeout; past ``max_staleness`` the token gets 503 (never
    401). After resume(): everything works again within seconds, with the same serve process,
    and a disable made then is refused within a second.
    """
    url = redis_server.url(prefix="faults")
    served = serve(url, env=SERVE_ENV, framework=framework)
    traffic = Traffic()
    with admin(url) as auth, Http(served, traffic) as http:
        seen, unseen = new_client(auth, "seen"), new_client(auth, "unseen")
        token = token_of(http, seen)
        before = [http.whoami(token) for _ in range(VERIFY_CALLS)]
        assert all(answer.status == 200 for answer in before)
        wait_ready(http)
        wait_one_feed(lambda: redis_feeds(redis_server))

        tokens: list[Answer] = []

        def ask_for_tokens() -> None:
            with Http(served, traffic) as own:
                tokens.extend(own.token(client) for client in (unseen, seen, unseen))

        with Flood(served, traffic, token) as flood, Sampler(served, traffic, token) as sampler:
            time.sleep(0.2)  # the flood under way
            hung = time.monotonic()
            redis_server.hang(method=method)
            complete = time.monotonic()
            asking = threading.Thread(target=ask_for_tokens, daemon=True)
            asking.start()
            during = [http.whoami(token) for _ in range(VERIFY_CALLS)]
            measured_for = time.monotonic() - hung
            health = http.health()
            asking.join(timeout=10)
            while time.monotonic() < complete + OUTAGE:
                time.sleep(0.05)
        flood_statuses = dict(flood.statuses)

        assert all(answer.status == 200 for answer in during), [str(a) for a in during if a.status != 200]
        latencies = [answer.elapsed for answer in during]
        assert p99(latencies) < VERIFY_P99_LIMIT, f"p99 {p99(latencies) * 1000:.1f} ms"
        assert max(latencies) < STORAGE_TIMEOUT / 2, f"a verification took {max(latencies):.3f} s"
        assert len(tokens) == 3
        for answer in tokens:
            assert_unavailable(answer, within=IN_TIME)
        assert_unavailable(health, within=IN_TIME)
        assert health.json()["storage"]["reachable"] is False
        # Forged kids: refused (401) until the state is too old, then 503 like everything else.
        assert set(flood_statuses) <= {401, 503} and flood_statuses.get(401, 0) > 100, flood_statuses
        fail_closed_after = assert_fail_closed([*during, *sampler.answers], began=hung, complete=complete)

        resumed = time.monotonic()
        redis_server.resume()
        wait_until(lambda: http.whoami(token).status == 200, timeout=10, interval=0.05)
        verifies_after = time.monotonic() - resumed
        ready_after = wait_ready(http) + verifies_after
        wait_until(lambda: http.token(unseen).status == 200, timeout=10, interval=0.05)
        tokens_after = time.monotonic() - resumed
        wait_one_feed(lambda: redis_feeds(redis_server))
        feed_after = time.monotonic() - resumed

        auth.registrations.disable(seen.client_id)
        refused = refusal_delay(http, token, time.monotonic())
        assert refused <= REFUSAL_LIMIT, f"refused {refused:.3f} s after the disable"

    report(
        f"redis hung ({method}, {framework})",
        verify_p99_before_ms=p99([a.elapsed for a in before]) * 1000,
        verify_p99_during_ms=p99(latencies) * 1000,
        verify_max_during_ms=max(latencies) * 1000,
        calls_took=measured_for,
        forged=flood_statuses,
        token_503=[round(a.elapsed, 3) for a in tokens],
        health_503=health.elapsed,
        verify_503_after=fail_closed_after,
        verifies_after_resume=verifies_after,
        ready_after_resume=ready_after,
        tokens_after_resume=tokens_after,
        feed_after_resume=feed_after,
        disable_to_refusal=refused,
    )
    check_serve(served, traffic)


# ---------------------------------------------------------------------------- token requests piling up

#: Clients asking for tokens at once while storage hangs: what an outage brings (every client whose
#: token expires retries), and more than one worker pool holds (anyio's 40 threads, a2wsgi's 10).
PILE_UP = 60
#: One timeout for the first wave, and as long again for its wake-up to be served (see the test).
PILED_IN_TIME = 2 * STORAGE_TIMEOUT + MARGIN / 2


async def _pile_up(
    served: ServeProcess, traffic: Traffic, client: Client, token: str, hang: Callable[[], None]
) -> tuple[float, list[Answer], list[Answer], Answer]:
    """``PILE_UP`` token requests at once after ``hang()``, and meanwhile 50 sequential
    verifications of ``token`` and one ``/healthz``: when the hang began, and every answer.

    The verifications and the health check are sent from threads of their own, each with its own
    connection: httpcore's pool re-checks every one of its connections (a ``select`` each) for
    every request it assigns, so a client holding ``PILE_UP`` of them spends up to hundreds of
    milliseconds per request on its own bookkeeping, which would be timed as the server's."""
    limits = httpx.Limits(max_connections=PILE_UP + 10, max_keepalive_connections=PILE_UP + 10)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=HTTP_TIMEOUT, limits=limits) as http:

        def answered(path: str, response: httpx.Response, sent: float) -> Answer:
            answer = Answer(
                path, response.status_code, response.headers, response.text, sent, time.monotonic() - sent
            )
            traffic.record(answer)
            return answer

        async def timed(method: str, path: str, **options: Any) -> Answer:
            sent = time.monotonic()
            return answered(path, await http.request(method, path, **options), sent)

        def alone(path: str, times: int, **options: Any) -> list[Answer]:
            """``times`` sequential GETs of ``path`` once the server hangs, on a connection of their own
            opened before."""
            with httpx.Client(base_url=served.base_url, timeout=HTTP_TIMEOUT) as own:
                own.get("/demo/public")
                hanging.wait()
                time.sleep(0.1)  # the token requests are in
                answers = []
                for _ in range(times):
                    sent = time.monotonic()
                    answers.append(answered(path, own.get(path, **options), sent))
                return answers

        hanging = threading.Event()  # set once the server is hung
        bearer = {"Authorization": f"Bearer {token}"}
        side = [
            asyncio.create_task(asyncio.to_thread(alone, "/demo/whoami", 50, headers=bearer)),
            asyncio.create_task(asyncio.to_thread(alone, "/healthz", 1)),
        ]
        await asyncio.gather(*(http.get("/demo/public") for _ in range(PILE_UP + 2)))  # connections open
        hung = time.monotonic()
        hang()
        hanging.set()
        form = {"grant_type": "client_credentials"}
        basic = (client.client_id, client.secret)
        tokens = await asyncio.gather(
            *(timed("POST", "/oauth/token", auth=basic, data=form) for _ in range(PILE_UP))
        )
        verified, [checked] = await asyncio.gather(*side)
    return hung, tokens, verified, checked


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_redis_hung_while_token_requests_pile_up(
    redis_server: RedisServer, serve: Serve, framework: str
) -> None:
    """Redis paused while 60 clients ask for tokens at once.

    The requests already waiting on Redis when it hangs (as many as the worker pool holds:
    anyio's 40 threads under Starlette, the 64 workers ``serve`` gives a2wsgi under Flask) each
    spend one storage timeout; the first to fail shuts the outage gate, and every later storage
    call fails at once, so no request waits for the timeouts of those ahead of it (before the gate,
    Flask's answers came after up to 7 s). The first wave wakes together and contends for the GIL,
    so its 503s come within twice the timeout, not within one. Meanwhile a token verified before
    keeps verifying from memory, never waiting as long as half a timeout, and ``/healthz``
    answers within twice the timeout.
    """
    url = redis_server.url(prefix="faults")
    served = serve(url, env=SERVE_ENV, framework=framework)
    traffic = Traffic()
    with admin(url) as auth, Http(served, traffic) as http:
        client = new_client(auth, "piling")
        token = token_of(http, client)
        assert http.whoami(token).status == 200
        wait_ready(http)
        try:
            hung, tokens, verified, health = asyncio.run(
                _pile_up(served, traffic, client, token, lambda: redis_server.hang(method="pause"))
            )
        finally:
            redis_server.resume()
        latencies = [answer.elapsed for answer in verified]
        report(
            f"token requests piling up ({framework})",
            token_503_min=min(a.elapsed for a in tokens),
            token_503_median=sorted(a.elapsed for a in tokens)[len(tokens) // 2],
            token_503_max=_max(tokens),
            verify_p99_ms=p99(latencies) * 1000,
            verify_max_ms=max(latencies) * 1000,
            verify_statuses=dict(Counter(a.status for a in verified)),
            health=health.elapsed,
        )
        problems = []
        late = sorted(round(a.elapsed, 2) for a in tokens if a.elapsed >= PILED_IN_TIME)
        if late:
            problems.append(
                f"{len(late)} of {PILE_UP} token requests answered after {PILED_IN_TIME} s: {late}"
            )
        if health.elapsed >= PILED_IN_TIME:
            problems.append(f"/healthz answered after {health.elapsed:.2f} s")
        # A wait, or a 503 while the state was still current (later 503s are the staleness rule's).
        current_until = hung + MAX_STALENESS - MARGIN
        slow = [
            a
            for a in verified
            if a.elapsed >= STORAGE_TIMEOUT / 2 or (a.status != 200 and a.sent + a.elapsed < current_until)
        ]
        if slow:
            shown = [f"{a.status} after {a.elapsed:.2f} s" for a in slow]
            problems.append(f"verifications of a valid token waited (from memory: never): {shown}")
        assert not problems, "\n".join(problems)
        for answer in [*tokens, health]:
            assert_unavailable(answer, within=PILED_IN_TIME)
        wait_until(lambda: http.token(client).status == 200, timeout=10, interval=0.05)
    check_serve(served, traffic)


# ---------------------------------------------------------------------------- PostgreSQL stopped or killed

#: Refused connections fail at once: "well under the timeout".
REFUSED_IN = STORAGE_TIMEOUT / 2


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_postgres_down_then_started(
    postgres_cluster: PostgresCluster, serve: Serve, how: Literal["stop", "kill"]
) -> None:
    """PostgreSQL stopped (``pg_ctl stop -m fast``) or killed (SIGKILL), then started again.

    While it is down, connections are refused: the token endpoint answers 503 with ``Retry-After``
    at once (well under the storage timeout), for a client never seen and for one verified before;
    ``/healthz`` is 503; a token verified before keeps verifying until ``max_staleness``, then
    gets 503, never 401. After the start (the data kept; crash recovery after the kill) it all
    recovers by itself, the LISTEN feed too: a disable made then is refused within a second.
    """
    url = postgres_cluster.create_database("faults")
    served = serve(url, env=SERVE_ENV)
    traffic = Traffic()
    with admin(url) as auth, Http(served, traffic) as http:
        seen, unseen = new_client(auth, "seen"), new_client(auth, "unseen")
        token = token_of(http, seen)
        assert http.whoami(token).status == 200
        wait_ready(http)
        wait_one_feed(lambda: postgres_feeds(postgres_cluster))

        with Sampler(served, traffic, token) as sampler:
            began = time.monotonic()
            postgres_cluster.stop("fast") if how == "stop" else postgres_cluster.kill()
            complete = time.monotonic()
            tokens = [http.token(client) for _ in range(3) for client in (unseen, seen)]
            health = http.health()
            while time.monotonic() < complete + OUTAGE:
                time.sleep(0.05)
        for answer in tokens:
            assert_unavailable(answer, within=REFUSED_IN)
        assert_unavailable(health, within=REFUSED_IN)
        assert health.json()["storage"]["reachable"] is False
        fail_closed_after = assert_fail_closed(sampler.answers, began=began, complete=complete)

        postgres_cluster.start()
        started = time.monotonic()
        wait_until(lambda: http.whoami(token).status == 200, timeout=10, interval=0.05)
        verifies_after = time.monotonic() - started
        wait_ready(http)
        ready_after = time.monotonic() - started
        assert token_of(http, unseen)
        tokens_after = time.monotonic() - started
        wait_one_feed(lambda: postgres_feeds(postgres_cluster))  # the LISTEN connection is back
        feed_after = time.monotonic() - started

        auth.registrations.disable(seen.client_id)
        refused = refusal_delay(http, token, time.monotonic())
        assert refused <= REFUSAL_LIMIT, f"refused {refused:.3f} s after the disable"

    report(
        f"postgres {how}",
        stop_took=complete - began,
        token_503_max=_max(tokens),
        health_503=health.elapsed,
        verify_503_after=fail_closed_after,
        verifies_after_start=verifies_after,
        ready_after_start=ready_after,
        tokens_after_start=tokens_after,
        feed_after_start=feed_after,
        disable_to_refusal=refused,
    )
    check_serve(served, traffic)


# ---------------------------------------------------------------------------- the output check itself

_STORAGE_WARNING_OUTPUT = """embedauth: serving http://127.0.0.1:1 (starlette) on http://127.0.0.1:1
embedauth: storage unavailable for POST /oauth/token
Traceback (most recent call last):
  File "sqlalchemy/pool/base.py", line 943, in __connect
    self.dbapi_connection = connection = pool._invoke_creator(self)
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: Connection refused
\tIs the server running on that host and accepting TCP/IP connections?
(Background on this error at: https://sqlalche.me/e/21/e3q8)

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "embedauth/storage/base.py", line 71, in translated
    raise StorageError(f"{type(self).__name__}: {type(exc).__name__}: {exc}") from exc
embedauth.errors.StorageError: SQLStorage: OperationalError: connection failed: Connection refused
\tIs the server running on that host and accepting TCP/IP connections?
embedauth: revocation feed: PostgresChangeFeed: OperationalError: connection failed; reconnecting
"""


@pytest.mark.parametrize(
    ("output", "unexpected"),
    [
        (_STORAGE_WARNING_OUTPUT, 0),
        (  # uvicorn's log of an uncaught error: a 500
            _STORAGE_WARNING_OUTPUT
            + "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
            + "  File \"x.py\", line 1, in f\nKeyError: 'kid'\n",
            1,
        ),
        (  # the storage warning, but the error it carries is no StorageError
            _STORAGE_WARNING_OUTPUT.replace("embedauth.errors.StorageError:", "RuntimeError:"),
            1,
        ),
        (  # the revocation thread's log.exception: a bug, whatever the exception
            "embedauth: revocation feed failed; retrying\nTraceback (most recent call last):\n"
            + '  File "x.py", line 1, in f\nembedauth.errors.StorageError: x\n',
            1,
        ),
    ],
    ids=["storage-warning", "uncaught", "not-a-storage-error", "revocation-thread"],
)
def test_only_a_storage_warnings_traceback_is_accepted(output: str, unexpected: int) -> None:
    assert len(unexpected_tracebacks(output)) == unexpected
