"""argon2 is never free for an attacker: failed authentications throttled, argon2 runs bounded and equal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from embedauth import Busy, EmbedAuth, InvalidGrant, TooManyAttempts
from embedauth.clock import FrozenClock
from embedauth.credentials.secrets import (
    REFRESH_TOKEN_PREFIX,
    SecretHasher,
    _with_checksum,
    generate_client_secret,
    hint,
)
from embedauth.credentials.throttle import AuthThrottle, address_key
from embedauth.http.messages import Request, Response
from embedauth.http.oauth import OAuthEndpoints
from embedauth.models import CreatedSecret
from tests.conftest import CATALOG, ISSUER, TEST_SETTINGS
from tests.http.helpers import basic

LIMITS = {"failed_auth_limit_per_client": 10, "failed_auth_limit_per_address": 50, "failed_auth_window": 60.0}


@pytest.fixture
def auth(clock: FrozenClock) -> Iterator[EmbedAuth]:
    with EmbedAuth("memory://", clock=clock, issuer=ISSUER, **(TEST_SETTINGS | LIMITS)) as instance:
        for name in CATALOG:
            instance.permissions.add(name)
        yield instance


@pytest.fixture
def created(auth: EmbedAuth) -> CreatedSecret:
    return auth.registrations.create(tenant="site-1", name="Job", scopes=["devices:read"])


def token_request(
    endpoints: OAuthEndpoints, client_id: str, secret: str, address: str = "198.51.100.7"
) -> Response:
    return endpoints.token(
        Request(
            "POST",
            f"{ISSUER}/oauth/token",
            basic(client_id, secret),
            [("grant_type", "client_credentials")],
            client_address=address,
        )
    )


@pytest.mark.rfc("6585", "4")
def test_wrong_secrets_get_429_while_the_real_client_keeps_getting_tokens(
    auth: EmbedAuth, created: CreatedSecret
) -> None:
    endpoints = OAuthEndpoints(auth)
    assert token_request(endpoints, created.client_id, created.client_secret).status == 200  # now cached
    statuses = []
    for _ in range(200):
        wrong = token_request(endpoints, created.client_id, generate_client_secret())
        statuses.append(wrong.status)
        # the real client, from the same address, in between every attempt
        assert token_request(endpoints, created.client_id, created.client_secret).status == 200
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    refusal = token_request(endpoints, created.client_id, generate_client_secret())
    assert refusal.body == {
        "error": "temporarily_unavailable",
        "error_description": f"too many failed attempts; retry after {refusal.header('Retry-After')} s",
    }
    assert 1 <= int(refusal.header("Retry-After") or 0) <= 6  # 10 per 60 s: one back every 6 s
    assert refusal.header("Cache-Control") == "no-store"


def test_the_throttle_comes_before_any_argon2(auth: EmbedAuth, created: CreatedSecret) -> None:
    endpoints = OAuthEndpoints(auth)
    for _ in range(10):
        token_request(endpoints, created.client_id, generate_client_secret())
    runs = counted(auth)
    for _ in range(50):
        assert token_request(endpoints, created.client_id, generate_client_secret()).status == 429
    assert runs() == 0


def test_an_unknown_client_is_throttled_the_same(auth: EmbedAuth, created: CreatedSecret) -> None:
    """No oracle: an unknown client ID gets the same 401s, then the same 429s, as a known one."""
    endpoints = OAuthEndpoints(auth)
    ghost = "00000000-0000-4000-8000-000000000000"
    known = [
        token_request(endpoints, created.client_id, generate_client_secret(), "192.0.2.1") for _ in range(12)
    ]
    unknown = [token_request(endpoints, ghost, generate_client_secret(), "192.0.2.2") for _ in range(12)]
    assert [(r.status, r.body, r.headers) for r in known] == [(r.status, r.body, r.headers) for r in unknown]


def test_the_window_forgives(auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock) -> None:
    endpoints = OAuthEndpoints(auth)
    for _ in range(10):
        token_request(endpoints, created.client_id, generate_client_secret())
    assert token_request(endpoints, created.client_id, created.client_secret).status == 429  # not cached yet
    clock.advance(6)  # one attempt back
    assert token_request(endpoints, created.client_id, created.client_secret).status == 200
    clock.advance(60)
    assert [
        token_request(endpoints, created.client_id, generate_client_secret()).status for _ in range(10)
    ] == [401] * 10


def test_per_address_across_client_ids(auth: EmbedAuth, created: CreatedSecret) -> None:
    """One address trying many client IDs is stopped after 50 failures; another address is not."""
    endpoints = OAuthEndpoints(auth)
    statuses = [
        token_request(endpoints, f"client-{i}", generate_client_secret(), "2001:db8::1").status
        for i in range(60)
    ]
    assert statuses[:50] == [401] * 50 and set(statuses[50:]) == {429}
    # The same /64 counts as the same source; another /64 does not.
    assert token_request(endpoints, "client-x", generate_client_secret(), "2001:db8::ffff").status == 429
    assert token_request(endpoints, "client-y", generate_client_secret(), "2001:db8:0:1::1").status == 401
    assert token_request(endpoints, created.client_id, created.client_secret, "2001:db8:0:1::1").status == 200


def test_address_keys() -> None:
    assert address_key("203.0.113.5") == "203.0.113.5"
    assert address_key("2001:db8::1") == address_key("2001:db8::abcd") == "2001:db8::/64"
    assert address_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert address_key(None) is None and address_key("") is None
    assert address_key("not an address") == "not an address"


def test_throttle_memory_is_bounded(clock: FrozenClock) -> None:
    throttle = AuthThrottle(per_identity=1, per_address=1, window=60, clock=clock)
    for i in range(300_000):
        throttle.failed(f"client-{i}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(throttle._identities._buckets) == 100_000  # the least recently failing forgotten


def counted(auth: EmbedAuth) -> Any:
    """Counts argon2 verifications from now on."""
    hasher = auth.clients._hasher
    calls = [0]
    original = hasher.verify

    def verify(*args: Any, **kwargs: Any) -> bool:
        calls[0] += 1
        return original(*args, **kwargs)

    hasher.verify = verify  # type: ignore[method-assign]
    return lambda: calls[0]


def test_one_argon2_run_per_presented_secret(auth: EmbedAuth, created: CreatedSecret) -> None:
    """Known client with two secrets, wrong secret: one run. Unknown client: one run. Right: one."""
    second = auth.registrations.add_secret(created.client_id)
    assert second.credential.hint != created.credential.hint
    runs = counted(auth)
    assert auth.clients.check_secret(created.client_id, generate_client_secret()) is None
    assert runs() == 1
    assert auth.clients.check_secret("00000000-0000-4000-8000-000000000000", generate_client_secret()) is None
    assert runs() == 2
    assert auth.clients.check_secret(created.client_id, second.client_secret) is not None
    assert runs() == 3
    assert auth.clients.check_secret(created.client_id, second.client_secret) is not None  # cached now
    assert runs() == 3


def test_hints_stay_distinct(
    auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new secret whose hint an existing one has is drawn again (so the hint names one hash)."""
    from embedauth.registry import registrations

    clashing = _with_checksum(created.client_secret[:7] + generate_client_secret()[7:-6])
    assert hint(clashing) == created.credential.hint
    draws = [clashing, generate_client_secret()]
    monkeypatch.setattr(registrations, "generate_client_secret", lambda: draws.pop(0))
    added = auth.registrations.add_secret(created.client_id)
    assert added.credential.hint != created.credential.hint and draws == []


def test_argon2_runs_at_once_are_bounded() -> None:
    hasher = SecretHasher(time_cost=2, memory_kib=8192, parallelism=1, max_concurrency=2, queue_timeout=30)
    stored = hasher.hash("s")
    with ThreadPoolExecutor(32) as pool:
        assert not any(pool.map(lambda _: hasher.verify(stored, "wrong"), range(64)))
    assert hasher.peak == 2 and hasher.running == 0


def test_a_full_queue_is_busy() -> None:
    hasher = SecretHasher(time_cost=1, memory_kib=256, parallelism=1, max_concurrency=1, queue_timeout=0.05)
    stored = hasher.hash("s")
    hasher._turns.acquire()  # the one turn is taken
    try:
        with pytest.raises(Busy) as busy:
            hasher.verify(stored, "s")
        assert busy.value.status == 503 and busy.value.retry_after == 1
    finally:
        hasher._turns.release()
    assert hasher.verify(stored, "s")


def test_busy_is_a_503_with_retry_after(auth: EmbedAuth, created: CreatedSecret) -> None:
    endpoints = OAuthEndpoints(auth)
    hasher = auth.clients._hasher
    taken = [hasher._turns.acquire(timeout=1) for _ in range(hasher.max_concurrency)]
    assert all(taken)
    hasher._queue_timeout = 0.05
    try:
        response = token_request(endpoints, created.client_id, generate_client_secret())
    finally:
        for _ in taken:
            hasher._turns.release()
    assert (response.status, response.header("Retry-After")) == (503, "1")
    assert isinstance(response.body, dict) and response.body["error"] == "temporarily_unavailable"


def test_refresh_tokens_are_throttled_too(auth: EmbedAuth) -> None:
    """Guesses at a refresh token (its id is right, the rest not) are throttled like client secrets."""
    issued = auth.refresh_tokens.create("alice", scopes=["devices:read"], tenant="site-1")
    token_id = issued.id
    guesses = [
        _with_checksum(REFRESH_TOKEN_PREFIX + token_id + generate_client_secret()[4:-6]) for _ in range(12)
    ]
    outcomes = []
    for guess in guesses:
        try:
            auth.tokens.refresh(guess, address="198.51.100.9")
        except TooManyAttempts:
            outcomes.append("429")
        except InvalidGrant:
            outcomes.append("invalid")
    assert outcomes == ["invalid"] * 10 + ["429"] * 2


def test_concurrent_failures_are_counted(auth: EmbedAuth, created: CreatedSecret) -> None:
    """16 wrong secrets at once: some may pass the check together, then the client is throttled."""
    endpoints = OAuthEndpoints(auth)
    barrier = threading.Barrier(16)

    def attempt(_: int) -> int:
        barrier.wait()
        return token_request(endpoints, created.client_id, generate_client_secret()).status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(attempt, range(16)))
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 10
    assert token_request(endpoints, created.client_id, generate_client_secret()).status == 429
