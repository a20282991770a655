"""Races between issuing and revoking, with injected clocks that disagree: a pause cannot be outrun.

Two instances over one store stand for two processes: ``issuer`` signs, ``verifier`` verifies with
its own revocation state. The issuer's clock is set ahead of or behind the verifier's by up to the
skew margin; the stale issuer signs with what it read before the pause, at every offset within a
second of it. Nothing issued after a pause was acknowledged verifies, anywhere; a token issued after
the restore does; tokens from before the pause stay dead after the restore.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from embedauth import EmbedAuth, InvalidClient, InvalidToken
from embedauth.clock import FrozenClock
from tests.conftest import CATALOG, ISSUER, TEST_SETTINGS

SKEWS = (-5.0, -2.0, 0.0, 1.5, 5.0)  # seconds the issuer's clock is ahead; 5 is the default margin
OFFSETS = tuple(i / 10 for i in range(11))  # seconds after the pause that the stale issuer signs


def pair(url: str, verifier_clock: FrozenClock, issuer_clock: FrozenClock) -> tuple[EmbedAuth, EmbedAuth]:
    issuer = EmbedAuth(url, clock=issuer_clock, issuer=ISSUER, **TEST_SETTINGS)
    verifier = EmbedAuth(issuer.storage, clock=verifier_clock, issuer=ISSUER, **TEST_SETTINGS)
    return issuer, verifier


def refused_by(verifier: EmbedAuth, token: str) -> bool:
    verifier.revocations.sync()  # what the feed would deliver within a second
    try:
        verifier.verify(token)
    except InvalidToken:
        return True
    return False


@pytest.fixture
def clocks() -> tuple[FrozenClock, FrozenClock]:
    return FrozenClock(1_790_000_000.0), FrozenClock(1_790_000_000.0)


@pytest.mark.parametrize("skew", SKEWS)
def test_a_stale_issuer_cannot_outrun_a_pause(skew: float, clocks: tuple[FrozenClock, FrozenClock]) -> None:
    verifier_clock, issuer_clock = clocks
    issuer_clock.advance(skew)
    issuer, verifier = pair("memory://", verifier_clock, issuer_clock)
    for name in CATALOG:
        issuer.permissions.add(name)
    created = issuer.registrations.create(tenant="site-1", name="Job", scopes=["devices:read"])
    before = issuer.tokens.client_credentials(created.client_id, created.client_secret).access_token
    assert verifier.verify(before)
    for offset in OFFSETS:
        # What a request read just before the pause, and signs `offset` seconds after it.
        stale = issuer.registrations.get(created.client_id)
        credential = stale.secrets[0]
        issuer.registrations.disable(created.client_id)
        for clock in clocks:
            clock.advance(offset)
        with pytest.raises(InvalidClient):  # the issuer itself knows: it re-checks after signing
            issuer.tokens.for_client(stale, credential, None)
        # A process that had not heard of the pause yet signs anyway (its state is empty):
        blind = EmbedAuth(issuer.storage, clock=issuer_clock, issuer=ISSUER, **TEST_SETTINGS)
        outran = blind.tokens.for_client(stale, credential, None).access_token
        assert refused_by(verifier, outran), f"signed {offset} s after the pause, clock {skew:+} s"
        assert refused_by(verifier, before)
        issuer.registrations.enable(created.client_id)
        after = issuer.tokens.client_credentials(created.client_id, created.client_secret).access_token
        assert not refused_by(verifier, after), f"issued after the restore, clock {skew:+} s"
        assert refused_by(verifier, before) and refused_by(verifier, outran)  # dead stays dead
        before = after
        blind.close()
    issuer.close()


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_narrowing_cannot_be_outrun(offset: float, clocks: tuple[FrozenClock, FrozenClock]) -> None:
    """Removing a permission refuses every token that still carries it, however it was timed."""
    verifier_clock, issuer_clock = clocks
    issuer, verifier = pair("memory://", verifier_clock, issuer_clock)
    for name in CATALOG:
        issuer.permissions.add(name)
    created = issuer.registrations.create(
        tenant="site-1", name="Job", scopes=["devices:read", "devices:write"]
    )
    stale = issuer.registrations.get(created.client_id)
    wide = issuer.tokens.client_credentials(created.client_id, created.client_secret).access_token
    issuer.registrations.update(created.client_id, scopes=["devices:read"])
    for clock in clocks:
        clock.advance(offset)
    blind = EmbedAuth(issuer.storage, clock=issuer_clock, issuer=ISSUER, **TEST_SETTINGS)
    outran = blind.tokens.for_client(stale, stale.secrets[0], None).access_token
    assert refused_by(verifier, wide) and refused_by(verifier, outran)
    narrow = issuer.tokens.client_credentials(created.client_id, created.client_secret).access_token
    assert verifier.verify(narrow).scopes == {"devices:read"}
    # A change that does not take a right away leaves outstanding tokens alone.
    issuer.registrations.update(created.client_id, name="Renamed", scopes=["devices:read", "users:read"])
    assert not refused_by(verifier, narrow)
    blind.close()
    issuer.close()


def test_sixteen_requests_racing_a_pause(backend_auth: EmbedAuth, clock: FrozenClock) -> None:
    """16 threads ask for tokens while another thread pauses: none issued after the pause was
    acknowledged verifies, in this process or another, on every backend."""
    auth = backend_auth
    created = auth.registrations.create(tenant="site-1", name="Job", scopes=["devices:read"])
    other = EmbedAuth(auth.storage, clock=clock, issuer=ISSUER, **TEST_SETTINGS)
    acknowledged = threading.Event()
    stop = threading.Event()
    after_ack: list[str] = []
    issued: list[str] = []
    lock = threading.Lock()

    def request(_: int) -> None:
        while not stop.is_set():
            try:
                token = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
            except InvalidClient:
                continue  # refused: the pause was seen
            with lock:
                issued.append(token)
                if acknowledged.is_set():
                    after_ack.append(token)

    with ThreadPoolExecutor(16) as pool:
        running = [pool.submit(request, i) for i in range(16)]
        deadline = time.monotonic() + 30
        while len(issued) < 32 and time.monotonic() < deadline:
            time.sleep(0.005)
        auth.registrations.disable(created.client_id)
        acknowledged.set()
        time.sleep(0.2)
        stop.set()
        for future in running:
            future.result()
    assert issued, "no token was issued before the pause"
    other.revocations.sync()
    for token in issued:  # every token, before or after the acknowledgement, is dead
        with pytest.raises(InvalidToken):
            auth.verify(token)
        with pytest.raises(InvalidToken):
            other.verify(token)
    auth.registrations.enable(created.client_id)
    fresh = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    other.revocations.sync()
    assert other.verify(fresh) and auth.verify(fresh)
    other.close()
