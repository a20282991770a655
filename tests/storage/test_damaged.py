"""Damage and driver errors at the storage edge: one unreadable entry hides nothing else, and a
driver's error never carries the values it was given."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
import redis
from sqlalchemy import text

from embedauth.clock import FrozenClock, utcnow
from embedauth.errors import StorageError
from embedauth.models import Revocation, RevocationKind
from embedauth.storage import Storage
from embedauth.storage.redis import RedisStorage
from embedauth.storage.sql import SQLStorage
from tests.storage.test_contract import registration


def entry(clock: FrozenClock, subject: str) -> Revocation:
    return Revocation(RevocationKind.CREDENTIAL, subject, utcnow(clock) + timedelta(hours=1))


def damage(storage: Storage, seq: int) -> None:
    """Write an entry at ``seq`` that no reader can decode, as a hand edit or a bad tool might."""
    if isinstance(storage, SQLStorage):
        with storage._engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO embedauth_revocation_log (seq, kind, subject, expires_at, generation, client_id,"
                    " issued_at) VALUES (:seq, 'no-such-kind', 'x', :far, 0, NULL, 0)"
                ),
                {"seq": seq, "far": 2**62},
            )
            conn.execute(text("UPDATE embedauth_revocation_head SET seq = :seq"), {"seq": seq})
    elif isinstance(storage, RedisStorage):
        storage._redis.zadd(storage._rev_log, {"{not json": seq})
        storage._redis.set(storage._rev_seq, seq)
    else:
        raise AssertionError(f"no way to damage {type(storage).__name__}")


ROW_STORES = [
    pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("sqlite", "postgres", "mysql", "redis")
]


@pytest.mark.parametrize("backend", ROW_STORES, indirect=True)  # memory:// holds models, not rows
def test_an_unreadable_entry_is_skipped(
    storage: Storage, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    first = storage.add_revocation(entry(clock, "before"))
    damage(storage, first + 1)
    after = storage.add_revocation(entry(clock, "after"))
    assert after == first + 2
    with caplog.at_level(logging.WARNING):
        assert [e.subject for e in storage.revocations_after(0)] == ["before", "after"]
    assert "unreadable revocation entry" in caplog.text


@pytest.mark.parametrize(  # the databases that enforce column lengths
    "backend", [pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("postgres", "mysql")], indirect=True
)
def test_driver_errors_carry_no_values(storage: Storage, clock: FrozenClock) -> None:
    """A value the database refuses (here a tenant too long for its column) is not in the error."""
    marker = "hash-that-must-not-leak"
    reg = dataclasses.replace(registration(clock), tenant=marker * 20)
    with pytest.raises(StorageError) as caught:
        storage.create_registration(reg)
    message = str(caught.value)
    assert marker not in message and marker not in str(caught.value.__cause__)


@pytest.mark.redis
def test_a_redis_timeout_is_one_timeout(clock: FrozenClock) -> None:
    """A client of a server that never answers gives up after one read timeout, not a retry chain."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:  # take connections, never answer
        for _ in range(16):
            accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        RedisStorage(f"redis://127.0.0.1:{port}/0", clock=clock, timeout=0.5)
    elapsed = time.monotonic() - started
    assert isinstance(caught.value.__cause__, redis.TimeoutError)
    assert elapsed < 1.5, f"{elapsed:.2f} s for a 0.5 s timeout"
    for sock in accepted:
        sock.close()
    listener.close()
