"""The registration view (``embedauth/registry/view.py``): the registrations the token endpoint keeps
in memory, kept true by the change notices of the revocation feed, and trusted only while that feed
is current."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embedauth import EmbedAuth, InvalidClient, InvalidToken, StorageError
from embedauth.clock import FrozenClock
from embedauth.models import Registration
from embedauth.storage.memory import MemoryStorage
from tests.conftest import CATALOG, TEST_SETTINGS
from tests.registry.helpers import create, works
from tests.services import storage_url


class CountingStorage(MemoryStorage):
    """Memory storage that counts registration reads and can run something in the middle of one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0
        self.during_read: Any = None

    def get_registration(self, client_id: str) -> Registration | None:
        self.reads += 1
        found = super().get_registration(client_id)
        if self.during_read is not None:
            during, self.during_read = self.during_read, None
            during()
        return found


@pytest.fixture
def storage(clock: FrozenClock) -> CountingStorage:
    storage = CountingStorage("memory://", clock=clock)
    with EmbedAuth(storage, clock=clock, **TEST_SETTINGS) as auth:
        for name in CATALOG:
            auth.permissions.add(name)
    return storage


@pytest.fixture
def pair(storage: CountingStorage, clock: FrozenClock) -> Iterator[tuple[EmbedAuth, EmbedAuth]]:
    """Two instances on one storage: two processes' worth of memory."""
    with (
        EmbedAuth(storage, clock=clock, **TEST_SETTINGS) as here,
        EmbedAuth(storage, clock=clock, **TEST_SETTINGS) as there,
    ):
        yield here, there


def reads(storage: CountingStorage) -> int:
    count, storage.reads = storage.reads, 0
    return count


def test_a_known_client_costs_no_storage_read(
    pair: tuple[EmbedAuth, EmbedAuth], storage: CountingStorage
) -> None:
    here, _ = pair
    created = create(here)
    reads(storage)
    assert works(here, created.client_id, created.client_secret)
    assert reads(storage) == 1  # argon2 ran: read from storage, as for an unknown client
    for _ in range(5):
        assert works(here, created.client_id, created.client_secret)
    assert reads(storage) == 0
    unknown = "00000000-0000-4000-8000-000000000000"
    for _ in range(3):
        assert not works(here, unknown, created.client_secret)
    assert reads(storage) == 3  # never remembered


def test_a_wrong_secret_reads_storage_like_an_unknown_client(
    pair: tuple[EmbedAuth, EmbedAuth], storage: CountingStorage
) -> None:
    """Whenever argon2 runs, storage is read first: a known client with a wrong secret costs what an
    unknown client costs (no timing oracle on which client IDs are in the view)."""
    here, _ = pair
    created, other = create(here), create(here)
    assert works(here, created.client_id, created.client_secret)
    reads(storage)
    assert not works(here, created.client_id, other.client_secret)
    assert reads(storage) == 1


def test_a_change_elsewhere_reaches_the_view_with_the_feed(
    pair: tuple[EmbedAuth, EmbedAuth], storage: CountingStorage
) -> None:
    here, there = pair
    created = create(here, scopes=["devices:read", "devices:write"])
    assert works(there, created.client_id, created.client_secret)
    here.registrations.update(created.client_id, scopes=["devices:read"])
    stale = there.tokens.client_credentials(created.client_id, created.client_secret)
    assert stale.scope == "devices:read devices:write"  # until its feed delivers the notice ...
    with pytest.raises(InvalidToken):  # ... and a verifier that knows of the narrowing refuses it
        here.verify(stale.access_token)
    there.revocations.sync()
    reads(storage)
    fresh = there.tokens.client_credentials(created.client_id, created.client_secret)
    assert fresh.scope == "devices:read" and reads(storage) == 1
    assert here.verify(fresh.access_token) and there.verify(fresh.access_token)


def test_a_read_during_which_a_notice_arrived_is_not_kept(
    pair: tuple[EmbedAuth, EmbedAuth], storage: CountingStorage
) -> None:
    here, there = pair
    created = create(here)
    view = there.clients._registrations
    there.revocations.start()

    def change_meanwhile() -> None:  # the read has its (old) row; the change lands and is announced
        here.registrations.update(created.client_id, name="renamed")
        there.revocations.sync()

    storage.during_read = change_meanwhile
    registration = view.get(created.client_id)
    assert registration is not None and registration.name == "Backup script"
    reads(storage)
    latest = view.get(created.client_id)
    assert latest is not None and latest.name == "renamed" and reads(storage) == 1
    assert view.get(created.client_id) == latest and reads(storage) == 0


def test_a_reload_after_a_gap_empties_the_view(clock: FrozenClock, storage: CountingStorage) -> None:
    """A scheduled full reload keeps the view (every notice since the last read was read); one after
    a gap (a reconnect, a failure, a log that went back) empties it: a notice may have been missed."""
    with EmbedAuth(storage, clock=clock, revocation_full_reload_interval=0.001, **TEST_SETTINGS) as auth:
        created = create(auth)
        auth.registrations.update(created.client_id, name="renamed")  # its change notice is in the log
        assert works(auth, created.client_id, created.client_secret)
        view = auth.clients._registrations
        assert len(view) == 1
        time.sleep(0.002)
        auth.revocations.sync()  # due for a scheduled full read
        assert len(view) == 1
        auth.revocations._needs_full = True  # what the feed thread sets after a failure
        auth.revocations.sync()
        assert len(view) == 0


def test_the_view_is_not_trusted_while_the_feed_is_behind(
    clock: FrozenClock, storage: CountingStorage
) -> None:
    """With the revocation state unconfirmed for longer than max(1 s, 3 polls), every request reads
    storage again (the feed that would tell of a change may be down)."""
    with EmbedAuth(storage, clock=clock, revocation_poll_interval=0.05, **TEST_SETTINGS) as auth:
        created = create(auth)
        assert works(auth, created.client_id, created.client_secret)
        reads(storage)
        assert works(auth, created.client_id, created.client_secret)
        assert reads(storage) == 0
        auth.revocations.stop()  # no more polls: the state ages
        time.sleep(1.1)
        assert works(auth, created.client_id, created.client_secret)
        assert reads(storage) == 1
        auth.revocations.sync()
        assert works(auth, created.client_id, created.client_secret)
        assert reads(storage) == 0


def test_an_entry_is_served_at_most_registration_cache_seconds(
    clock: FrozenClock, storage: CountingStorage
) -> None:
    with EmbedAuth(storage, clock=clock, registration_cache_seconds=0.2, **TEST_SETTINGS) as auth:
        created = create(auth)
        assert works(auth, created.client_id, created.client_secret)
        reads(storage)
        assert works(auth, created.client_id, created.client_secret)
        assert reads(storage) == 0
        time.sleep(0.25)
        assert works(auth, created.client_id, created.client_secret)
        assert reads(storage) == 1


def test_the_view_is_bounded(clock: FrozenClock, storage: CountingStorage) -> None:
    with EmbedAuth(storage, clock=clock, registration_cache_size=3, **TEST_SETTINGS) as auth:
        made = [create(auth) for _ in range(5)]
        for created in made:
            assert works(auth, created.client_id, created.client_secret)
        assert len(auth.clients._registrations) == 3
    with EmbedAuth(storage, clock=clock, registration_cache_size=0, **TEST_SETTINGS) as auth:
        reads(storage)
        for _ in range(3):
            assert works(auth, made[0].client_id, made[0].client_secret)
        assert reads(storage) == 3 and len(auth.clients._registrations) == 0


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_change_in_another_connection_reaches_the_view_within_a_second(
    backend: str, tmp_path: Path
) -> None:
    """Two instances, each with its own connection to a real server with a push feed: a pause in one
    reaches the other's view (and its verifier) within a second, with no poll."""
    with storage_url(backend, tmp_path) as url:
        settings = TEST_SETTINGS | {"revocation_poll_interval": 30.0}
        with EmbedAuth(url, **settings) as here, EmbedAuth(url, **settings) as there:
            here.permissions.add("devices:read")
            created = create(here)
            view = there.clients._registrations
            # The feed's first loads (the thread's connection and full read, a notice that anything
            # may have changed) may land after a request has filled the view, emptying it again: ask
            # until the view holds the registration after a request and a verification. Counted in
            # requests, not seconds: on a loaded machine one request can outlast any deadline.
            for _ in range(20):
                token = there.tokens.client_credentials(created.client_id, created.client_secret).access_token
                assert there.verify(token)
                if len(view) == 1:
                    break
                time.sleep(0.1)
            assert len(view) == 1, "twenty requests a tenth of a second apart and the view kept none"
            changed = threading.Event()
            there.revocations.listen(lambda client_id: changed.set())
            began = time.monotonic()
            here.registrations.disable(created.client_id)
            assert changed.wait(1.0), "the change notice did not arrive within a second"
            assert len(view) == 0
            # The notice heard may be the feed's own (None: its first connection, say), which empties
            # the view before the pause's revocation entry is applied: give that the same second.
            while True:
                try:
                    there.verify(token)
                except InvalidToken:
                    break
                assert time.monotonic() - began < 1.0, "the pause did not reach the verifier within a second"
                time.sleep(0.01)
            with pytest.raises(InvalidClient):
                there.tokens.client_credentials(created.client_id, created.client_secret)


def test_a_failing_feed_empties_the_view_at_once(clock: FrozenClock, storage: CountingStorage) -> None:
    """When the revocation thread cannot read storage, the view forgets everything: until the feed
    works again, every token request reads storage (and meets the outage there)."""
    with EmbedAuth(storage, clock=clock, revocation_poll_interval=0.05, **TEST_SETTINGS) as auth:
        created = create(auth)
        assert works(auth, created.client_id, created.client_secret)
        view = auth.clients._registrations
        assert len(view) == 1
        original = storage.revocation_head
        failed = threading.Event()

        def down() -> Any:
            failed.set()
            raise StorageError("storage unreachable")

        storage.revocation_head = down  # type: ignore[method-assign]
        assert failed.wait(2)
        deadline = time.monotonic() + 1
        while len(view) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(view) == 0
        storage.revocation_head = original  # type: ignore[method-assign]
