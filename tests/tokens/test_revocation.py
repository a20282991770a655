"""Revocation that takes effect at once, and its entries expiring with the tokens they cover."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from embedauth import EmbedAuth, StorageError
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret, RevocationHead, RevocationKind
from embedauth.storage.memory import MemoryStorage
from tests.conftest import CATALOG, ISSUER, TEST_SETTINGS
from tests.tokens.helpers import refused, token_for


@pytest.mark.parametrize("action", ["disable", "delete", "rotate_secret", "delete_secret"])
def test_revocation_is_immediate(auth: EmbedAuth, created: CreatedSecret, action: str) -> None:
    tokens = [token_for(auth, created) for _ in range(2)]
    auth.verify(tokens[0])  # one of them cached
    if action == "delete_secret":
        auth.registrations.add_secret(created.client_id)
        auth.registrations.delete_secret(created.client_id, created.credential.id)
    else:
        getattr(auth.registrations, action)(created.client_id)
    for token in tokens:
        refused(auth, token)


def test_tokens_issued_after_rotation_or_enable_work(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    rotated = auth.registrations.rotate_secret(created.client_id)
    clock.advance(1)
    assert auth.verify(auth.tokens.client_credentials(created.client_id, rotated.client_secret).access_token)
    auth.registrations.disable(created.client_id)
    auth.registrations.enable(created.client_id)
    clock.advance(1)
    assert auth.verify(auth.tokens.client_credentials(created.client_id, rotated.client_secret).access_token)


def test_revocation_entries_expire_with_the_tokens(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    auth.registrations.disable(created.client_id)
    assert auth.revocations.size() == 1
    clock.advance(3600 + 30 + 5)  # the lifetime, the leeway and the skew margin
    auth.revocations.sync()
    assert auth.revocations.size() == 0


# ---------------------------------------------------------------------------- the log going back


class Restorable(MemoryStorage):
    """A store that can be put back to an earlier snapshot (as a Redis restarted from an older RDB
    file, or a database restored from a backup, would be), or emptied (restarted without data)."""

    def snapshot(self) -> tuple[Any, ...]:
        with self._lock:
            return (dict(self._revocations), self._seq, self._epoch, self._max_token_age)

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        with self._lock:
            revocations, self._seq, self._epoch, self._max_token_age = snapshot
            self._revocations = dict(revocations)

    def empty(self) -> None:
        self.restore(({}, 0, "a-new-epoch", 0))


def two_processes(clock: FrozenClock) -> tuple[Restorable, EmbedAuth, EmbedAuth]:
    store = Restorable("memory://", clock=clock)
    writer = EmbedAuth(store, clock=clock, issuer=ISSUER, **TEST_SETTINGS)
    reader = EmbedAuth(store, clock=clock, issuer=ISSUER, **TEST_SETTINGS)
    for name in CATALOG:
        writer.permissions.add(name)
    return store, writer, reader


@pytest.mark.parametrize("how", ["restored", "emptied"])
def test_a_log_that_goes_back_is_reloaded(clock: FrozenClock, how: str) -> None:
    """After the store's seq went back, a later pause is still seen; what was known stays dead."""
    store, writer, reader = two_processes(clock)
    first = writer.registrations.create(tenant="t", name="first")
    second = writer.registrations.create(tenant="t", name="second")
    old, new = (token_for(writer, made) for made in (first, second))
    reader.verify(old)
    snapshot = store.snapshot()
    for _ in range(3):  # the reader sees seq 3, then the store goes back to 0
        writer.keys.withdraw(writer.keys.rotate().kid)
    writer.registrations.disable(first.client_id)
    reader.revocations.sync()
    refused(reader, old)
    store.restore(snapshot) if how == "restored" else store.empty()
    writer.registrations.disable(second.client_id)  # seq 1 again: below what the reader saw
    reader.revocations.sync()
    refused(reader, new)
    refused(reader, old)  # known before the regression: still dead although the store forgot it


def test_the_state_is_bounded(auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock) -> None:
    """A client revoking 100,000 of its tokens: the state stays within its bound, and what is
    coalesced still refuses what it must and only that."""
    import time

    revocations, limit = auth.revocations, auth.settings.revocation_client_token_limit
    started = time.monotonic()
    for i in range(100_000):
        entry = revocations.entry(
            RevocationKind.ACCESS_TOKEN, f"jti-{i}", client_id=created.client_id, issued_at=int(clock()) - 10
        )
        revocations.revoke(entry)
    assert time.monotonic() - started < 60
    assert revocations.token_entries(created.client_id) <= limit
    assert revocations.size() <= limit + 1
    clock.advance(revocations._settings.revocation_skew + 1)
    fresh = token_for(auth, created)  # issued after every revoked one, beyond the skew margin
    assert auth.verify(fresh)


def test_coalescing_through_the_endpoint(auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock) -> None:
    """Past the per-client limit, one revocation refuses every token of the client issued so far."""
    limit = auth.settings.revocation_client_token_limit
    tokens = [token_for(auth, created) for _ in range(limit + 5)]
    for token in tokens[: limit + 1]:
        auth.tokens.revoke(token)
    for token in tokens:  # the remaining four were issued in the same second: coalesced away too
        refused(auth, token)
    assert auth.revocations.size() <= limit + 1
    clock.advance(auth.settings.revocation_skew + 1)
    assert auth.verify(token_for(auth, created))


def test_entries_outlive_the_longest_token_of_the_deployment(clock: FrozenClock) -> None:
    """An issuer with a longer lifetime raises the deployment's bound; a pause by an instance with
    a shorter one still refuses the longer-lived token until it expires."""
    store, short, _ = two_processes(clock)
    long = short.with_settings(access_token_lifetime=7200)
    made = short.registrations.create(tenant="t", name="n")
    token = token_for(long, made)
    assert store.revocation_head().max_token_age == 7200 + 30
    short.registrations.disable(made.client_id)
    verifier = EmbedAuth(store, clock=clock, issuer=ISSUER, **TEST_SETTINGS)
    clock.advance(3600 + 30 + 5 + 60)  # past what the short-lived instance alone would keep
    refused(verifier, token)
    clock.advance(3600)
    verifier.revocations.sync()
    refused(verifier, token)  # expired by now anyway


def test_verification_fails_closed_when_the_state_is_too_old(clock: FrozenClock) -> None:
    store = Flaky("memory://", clock=clock)
    auth = EmbedAuth(
        store, clock=clock, issuer=ISSUER, max_staleness=0.3, revocation_poll_interval=0.05, **TEST_SETTINGS
    )
    made = auth.registrations.create(tenant="t", name="n")
    token = token_for(auth, made)
    assert auth.verify(token)
    store.down = True
    assert auth.verify(token)  # from memory, within the staleness bound
    eventually(lambda: raises(StorageError, auth.verify, token), within=3)
    store.down = False
    eventually(lambda: not raises(StorageError, auth.verify, token), within=3)
    assert auth.verify(token)
    auth.close()


def test_writers_never_wait_for_the_reader(clock: FrozenClock) -> None:
    """While the revocation thread hangs on storage, a pause and a revocation still complete."""
    store = Flaky("memory://", clock=clock)
    auth = EmbedAuth(store, clock=clock, issuer=ISSUER, revocation_poll_interval=0.05, **TEST_SETTINGS)
    made = auth.registrations.create(tenant="t", name="n")
    token = token_for(auth, made)
    auth.verify(token)
    store.hang_reads.set()
    try:
        import time

        time.sleep(0.2)  # the thread is now stuck in a read
        started = time.monotonic()
        auth.tokens.revoke(token)
        auth.registrations.disable(made.client_id)
        assert time.monotonic() - started < 1
        refused(auth, token)
    finally:
        store.hang_reads.clear()
        store.release.set()
        auth.close()


class Flaky(MemoryStorage):
    """A memory store whose revocation reads can fail (``down``), or hang for the revocation
    thread (``hang_reads``)."""

    driver_errors = (ConnectionError,)

    def __init__(self, url: str, *, clock: Any, timeout: float = 3.0) -> None:
        super().__init__(url, clock=clock, timeout=timeout)
        self.down = False
        self.hang_reads = threading.Event()
        self.release = threading.Event()

    def revocation_head(self) -> RevocationHead:
        if self.down:
            raise ConnectionError("storage is down")
        if self.hang_reads.is_set() and threading.current_thread().name == "embedauth-revocations":
            self.release.wait(10)  # the reader's connection hangs; the writer's own does not
        return super().revocation_head()


def raises(error: type[BaseException], call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except error:
        return True
    return False


def eventually(predicate: Any, within: float) -> None:
    import time

    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)
