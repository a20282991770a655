"""The outage gate of :mod:`embedauth.storage.base`, against a real ``redis-server`` that hangs.

After one call spent its timeout on a hung server, calls fail at once instead of each waiting a
timeout of its own; after the backoff one call probes, and its success opens the gate again.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from embedauth.clock import system_clock
from embedauth.errors import StorageError
from embedauth.storage import base
from embedauth.storage.redis import RedisStorage
from tests.faults.servers import RedisServer, wait_until

TIMEOUT = 0.5


def _timed_get(store: RedisStorage) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        store.get_registration("nobody")
    except StorageError as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_after_one_timeout_calls_fail_at_once_until_a_probe_succeeds(redis_server: RedisServer) -> None:
    store = RedisStorage(redis_server.url(prefix="gate"), clock=system_clock, timeout=TIMEOUT)
    try:
        assert _timed_get(store)[1] is None
        redis_server.hang(method="pause")
        elapsed, error = _timed_get(store)
        assert error is not None and TIMEOUT * 0.8 <= elapsed < TIMEOUT * 3, (elapsed, error)
        # Now shut: many calls at once, each refused without touching the socket.
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: _timed_get(store), range(32)))
        assert all(error is not None for _, error in results)
        assert max(elapsed for elapsed, _ in results) < TIMEOUT / 5, results
        assert all("unreachable a moment ago" in str(error) for _, error in results)
        redis_server.resume()
        # Within the backoff the gate stays shut although the server is back...
        assert "unreachable a moment ago" in str(_timed_get(store)[1])
        # ...then one call probes, succeeds, and every call goes through again.
        wait_until(lambda: _timed_get(store)[1] is None, timeout=base.OUTAGE_BACKOFF + 2, interval=0.05)
        assert all(_timed_get(store)[1] is None for _ in range(5))
    finally:
        redis_server.resume()
        store.close()


def test_while_the_probe_waits_the_others_fail_at_once(redis_server: RedisServer) -> None:
    store = RedisStorage(redis_server.url(prefix="gate"), clock=system_clock, timeout=TIMEOUT)
    try:
        redis_server.hang(method="pause")
        _timed_get(store)  # shuts the gate
        time.sleep(base.OUTAGE_BACKOFF + 0.05)
        probe: list[tuple[float, BaseException | None]] = []
        thread = threading.Thread(target=lambda: probe.append(_timed_get(store)))
        thread.start()
        time.sleep(TIMEOUT / 5)  # the probe is in its wait on the hung server
        others = [_timed_get(store) for _ in range(10)]
        thread.join()
        assert probe[0][0] >= TIMEOUT * 0.8, probe  # the probe did reach the server
        assert max(elapsed for elapsed, _ in others) < TIMEOUT / 5, others
        # The probe failed: shut for another backoff.
        assert "unreachable a moment ago" in str(_timed_get(store)[1])
    finally:
        redis_server.resume()
        store.close()


def test_a_refused_statement_does_not_shut_the_gate(redis_server: RedisServer) -> None:
    """A server that answers with an error is up: the next call goes to it."""
    store = RedisStorage(redis_server.url(prefix="gate"), clock=system_clock, timeout=TIMEOUT)
    try:
        client = redis_server.client()
        client.set("gate:{registrations}", "not a set")  # the index every listing reads
        with pytest.raises(StorageError, match="WRONGTYPE"):
            store.list_registrations(None)
        client.delete("gate:{registrations}")
        assert _timed_get(store)[1] is None
    finally:
        store.close()
