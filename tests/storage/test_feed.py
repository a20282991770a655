"""The revocation change feed (``Storage.open_change_feed``): Redis pub/sub and PostgreSQL
LISTEN/NOTIFY against real servers, and the polling fallback of the other backends.

Writer and reader are separate storage instances over one URL, each with its own connections, as two
processes would be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy

from embedauth.clock import FrozenClock, to_timestamp, utcnow
from embedauth.config import Settings
from embedauth.errors import StorageError
from embedauth.hooks import make_plugin_manager
from embedauth.models import Revocation, RevocationKind
from embedauth.storage import Storage, open_storage
from embedauth.storage.feed import ChangeFeed
from embedauth.storage.redis import RedisChangeFeed
from embedauth.storage.sql.postgres_feed import PostgresChangeFeed
from embedauth.tokens.revocation import RevocationState
from tests.services import POSTGRES_URL, REDIS_URL, storage_url

FEED_BACKENDS = ("postgres", "redis")
POLLED_BACKENDS = ("memory", "sqlite", "mysql")


def _params(backends: tuple[str, ...]) -> list[object]:
    return [pytest.param(b, marks=getattr(pytest.mark, b)) for b in backends]


@pytest.fixture(params=_params(FEED_BACKENDS))
def feed_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def feed_url(feed_backend: str, tmp_path: Path) -> Iterator[str]:
    with storage_url(feed_backend, tmp_path) as url:
        yield url


@pytest.fixture
def opener(clock: FrozenClock) -> Iterator[Callable[[str], Storage]]:
    """Opens storages (each with connections of its own); closes them after the test."""
    opened: list[Storage] = []

    def open_(url: str) -> Storage:
        store = open_storage(url, clock=clock, plugins=make_plugin_manager())
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def feeds() -> Iterator[Callable[[Storage], ChangeFeed]]:
    """Opens a storage's change feed (which must exist); closes every one after the test."""
    opened: list[ChangeFeed] = []

    def open_(store: Storage) -> ChangeFeed:
        feed = store.open_change_feed()
        assert feed is not None
        opened.append(feed)
        return feed

    yield open_
    for feed in opened:
        feed.close()


def revocation(clock: FrozenClock, subject: str) -> Revocation:
    return Revocation(
        RevocationKind.ACCESS_TOKEN, subject, utcnow(clock) + timedelta(hours=1), client_id="client-1"
    )


def kill_connection(backend: str, feed: ChangeFeed) -> None:
    """Close the feed's connection from the server side, as a restart or a network failure would."""
    if backend == "redis":
        assert isinstance(feed, RedisChangeFeed)
        admin = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            ids = [client["id"] for client in admin.client_list() if client["name"] == feed.client_name]
            assert len(ids) == 1, ids
            assert admin.client_kill_filter(_id=ids[0]) == 1
        finally:
            admin.close()
    else:
        assert isinstance(feed, PostgresChangeFeed)
        admin_engine = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin_engine.connect() as conn:
                killed = conn.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name AND query ILIKE 'LISTEN%'"
                    ),
                    {"name": feed.application_name},
                ).scalars()
                assert list(killed) == [True]
        finally:
            admin_engine.dispose()


def timed_wait(feed: ChangeFeed, timeout: float, action: Callable[[], object]) -> tuple[bool, float]:
    """Block in ``feed.wait(timeout)`` on a thread, run ``action`` meanwhile; return what ``wait``
    returned and how long after ``action`` finished it did."""
    result: list[bool] = []
    woke = [0.0]

    def wait() -> None:
        result.append(feed.wait(timeout))
        woke[0] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)  # let it block
    action()
    done = time.monotonic()
    waiter.join(timeout + 5)
    assert not waiter.is_alive() and len(result) == 1
    return result[0], woke[0] - done


def eventually(condition: Callable[[], bool], within: float) -> float:
    """Seconds until ``condition()`` holds; fails after ``within``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, f"not within {within} s"
        time.sleep(0.01)
    return time.monotonic() - start


# -------------------------------------------------------------------- the feed


def test_feed_wakes_another_instance(
    feed_url: str,
    opener: Callable[[str], Storage],
    feeds: Callable[[Storage], ChangeFeed],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    writer_feed, reader_feed = feeds(writer), feeds(reader)
    assert reader_feed.wait(0.05) is False
    assert writer_feed.wait(0.05) is False

    start = time.monotonic()
    seq = writer.add_revocation(revocation(clock, "t1"))
    assert reader_feed.wait(2) is True
    assert time.monotonic() - start < 0.5
    assert [(e.subject, e.seq) for e in reader.revocations_after(0)] == [("t1", seq)]
    assert writer_feed.wait(2) is True  # the writer's own process hears it too
    assert reader_feed.wait(0.05) is False

    # A reader already blocked in wait() is woken at once.
    woke, latency = timed_wait(reader_feed, 5, lambda: writer.add_revocation(revocation(clock, "t2")))
    assert woke is True and latency < 0.5
    assert writer_feed.wait(2) is True


def test_a_burst_wakes_once(
    feed_url: str,
    opener: Callable[[str], Storage],
    feeds: Callable[[Storage], ChangeFeed],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    feed = feeds(reader)
    for i in range(5):
        writer.add_revocation(revocation(clock, f"burst{i}"))
    time.sleep(0.2)  # every notification has arrived
    assert feed.wait(2) is True
    assert feed.wait(0.05) is False
    assert [e.subject for e in reader.revocations_after(0)] == [f"burst{i}" for i in range(5)]


def test_feeds_of_other_namespaces_stay_quiet(
    feed_backend: str,
    feed_url: str,
    tmp_path: Path,
    opener: Callable[[str], Storage],
    feeds: Callable[[Storage], ChangeFeed],
    clock: FrozenClock,
) -> None:
    writer = opener(feed_url)
    mine = feeds(opener(feed_url))
    with storage_url(feed_backend, tmp_path / "other") as other_url:
        other_store = open_storage(other_url, clock=clock, plugins=make_plugin_manager())
        try:
            other = feeds(other_store)
            writer.add_revocation(revocation(clock, "t1"))
            assert mine.wait(2) is True
            assert other.wait(0.3) is False
            other.close()
        finally:
            other_store.close()


def test_connection_loss_raises_and_a_new_feed_catches_up(
    feed_backend: str,
    feed_url: str,
    opener: Callable[[str], Storage],
    feeds: Callable[[Storage], ChangeFeed],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    feed = feeds(reader)
    kill_connection(feed_backend, feed)
    missed = writer.add_revocation(revocation(clock, "while-disconnected"))
    with pytest.raises(StorageError):
        feed.wait(2)
    feed.close()

    fresh = feeds(reader)
    assert fresh.wait(0.05) is False
    assert [e.seq for e in reader.revocations_after(0)] == [missed]  # what the feed could not say
    writer.add_revocation(revocation(clock, "after"))
    assert fresh.wait(2) is True


def test_the_same_feed_reconnects_after_an_error(
    feed_backend: str,
    feed_url: str,
    opener: Callable[[str], Storage],
    feeds: Callable[[Storage], ChangeFeed],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    feed = feeds(reader)
    kill_connection(feed_backend, feed)
    with pytest.raises(StorageError):
        feed.wait(2)
    assert feed.wait(0.05) is False  # subscribed again
    writer.add_revocation(revocation(clock, "t1"))
    assert feed.wait(2) is True


def test_close_ends_a_blocked_wait_promptly(
    feed_url: str, opener: Callable[[str], Storage], feeds: Callable[[Storage], ChangeFeed]
) -> None:
    feed = feeds(opener(feed_url))
    woke, latency = timed_wait(feed, 10, feed.close)
    assert woke is False and latency < 1.0
    feed.close()  # idempotent
    assert feed.wait(0.05) is False


@pytest.mark.parametrize("backend", _params(POLLED_BACKENDS))
def test_other_backends_are_polled(backend: str, tmp_path: Path, opener: Callable[[str], Storage]) -> None:
    with storage_url(backend, tmp_path) as url:
        assert opener(url).open_change_feed() is None


# -------------------------------------------------------------------- with the verifier's state


def is_revoked(state: RevocationState, token_id: str, clock: FrozenClock) -> bool:
    return state.is_revoked(
        client_id="client-1", credential_id=None, token_id=token_id, issued_at=to_timestamp(utcnow(clock))
    )


@pytest.fixture
def recorded_feeds(monkeypatch: pytest.MonkeyPatch) -> Callable[[Storage], list[ChangeFeed]]:
    """Records every feed a storage opens from now on (as RevocationState's thread does)."""

    def record(store: Storage) -> list[ChangeFeed]:
        opened: list[ChangeFeed] = []
        original = store.open_change_feed

        def open_and_record() -> ChangeFeed | None:
            feed = original()
            if feed is not None:
                opened.append(feed)
            return feed

        monkeypatch.setattr(store, "open_change_feed", open_and_record)
        return opened

    return record


def test_revocation_state_is_pushed(
    feed_url: str,
    opener: Callable[[str], Storage],
    recorded_feeds: Callable[[Storage], list[ChangeFeed]],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    opened = recorded_feeds(reader)
    # Polling every 5 s: only the feed can make a revocation visible within a second.
    state = RevocationState(reader, Settings(revocation_poll_interval=5.0), clock)
    state.start()
    try:
        eventually(lambda: len(opened) == 1, within=5)
        time.sleep(0.2)  # past the catch-up read, blocked in wait()
        writer.add_revocation(revocation(clock, "token-1"))
        eventually(lambda: is_revoked(state, "token-1", clock), within=1.0)
        assert not is_revoked(state, "token-2", clock)
    finally:
        state.stop()


def test_revocation_state_reconnects(
    feed_backend: str,
    feed_url: str,
    opener: Callable[[str], Storage],
    recorded_feeds: Callable[[Storage], list[ChangeFeed]],
    clock: FrozenClock,
) -> None:
    writer, reader = opener(feed_url), opener(feed_url)
    opened = recorded_feeds(reader)
    # After an error the state waits one poll interval before it opens a new feed.
    state = RevocationState(reader, Settings(revocation_poll_interval=0.5), clock)
    state.start()
    try:
        eventually(lambda: len(opened) == 1, within=5)
        writer.add_revocation(revocation(clock, "token-1"))
        eventually(lambda: is_revoked(state, "token-1", clock), within=1.0)

        kill_connection(feed_backend, opened[0])
        writer.add_revocation(revocation(clock, "token-2"))
        eventually(lambda: is_revoked(state, "token-2", clock), within=2.0)
        eventually(lambda: len(opened) == 2, within=2.0)  # a new feed replaced the broken one

        writer.add_revocation(revocation(clock, "token-3"))
        eventually(lambda: is_revoked(state, "token-3", clock), within=1.0)
    finally:
        state.stop()
