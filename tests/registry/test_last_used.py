"""``last_used_at`` per registration and per credential: written behind, coalesced, never on the
request's path (``embedauth/registry/last_used.py``)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock, from_timestamp, utcnow
from embedauth.models import CreatedSecret
from tests.conftest import catalogued
from tests.tokens.helpers import token_for


def count_writes(auth: EmbedAuth) -> list[Any]:
    """Every ``record_use`` the instance's storage receives, recorded (the method still runs)."""
    calls: list[Any] = []
    storage = auth.storage
    real = storage.record_use

    def counted(client_id: str, at: Any, *, credential_id: str | None = None) -> None:
        calls.append((client_id, at, credential_id))
        real(client_id, at, credential_id=credential_id)

    storage.record_use = counted  # type: ignore[method-assign]
    return calls


def test_a_use_is_written_behind_not_on_the_request(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    writes = count_writes(auth)
    first = utcnow(clock)
    token_for(auth, created)
    assert writes == []  # the request only noted it
    assert auth.registrations.get(created.client_id).last_used_at is None
    clock.advance(0.25)
    token_for(auth, created)
    auth.flush()
    later = first + timedelta(milliseconds=250)
    assert writes == [(created.client_id, later, created.credential.id)]  # two uses, one write
    stored = auth.registrations.get(created.client_id)
    assert stored.last_used_at == later
    assert stored.secrets[0].last_used_at == later


def test_each_credential_keeps_its_own_last_use(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    second = auth.registrations.add_secret(created.client_id)
    token_for(auth, created)
    auth.flush()
    clock.advance(10)
    auth.tokens.client_credentials(second.client_id, second.client_secret)
    auth.flush()
    by_id = {s.id: s.last_used_at for s in auth.registrations.get(created.client_id).secrets}
    assert by_id == {created.credential.id: from_timestamp(clock() - 10), second.credential.id: utcnow(clock)}
    # An edit (a save of the registration) keeps both: only record_use moves them.
    auth.registrations.update(created.client_id, name="Renamed")
    kept = {s.id: s.last_used_at for s in auth.registrations.get(created.client_id).secrets}
    assert kept == by_id


def test_a_storage_error_keeps_the_uses_for_the_next_round(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedauth.errors import StorageError

    token_for(auth, created)

    def down(*args: Any, **kwargs: Any) -> None:
        raise StorageError("down")

    monkeypatch.setattr(auth.storage, "record_use", down)
    with pytest.raises(StorageError):
        auth.flush()
    monkeypatch.undo()
    auth.flush()
    assert auth.registrations.get(created.client_id).last_used_at == utcnow(clock)


@pytest.mark.parametrize("interval", [0.5])
def test_a_thousand_requests_are_a_handful_of_writes(fresh_url: str, interval: float) -> None:
    """On a real backend and the real clock: 1,000 token requests for one client are written at
    most once per interval, and the stored time is within one interval of the last request."""
    with catalogued(fresh_url, time.time, last_used_interval=interval) as auth:  # type: ignore[arg-type]
        created = auth.registrations.create(tenant="site-1", name="Busy", scopes=["devices:read"])
        writes = count_writes(auth)
        started = time.monotonic()
        for _ in range(1000):
            token_for(auth, created)
        last_request = utcnow(time.time)
        elapsed = time.monotonic() - started
        assert len(writes) <= elapsed / interval + 2, (len(writes), elapsed)
        shown = auth.registrations.get(created.client_id)
        if elapsed > interval * 2:  # the writer has run at least once during the requests
            assert shown.last_used_at is not None
            assert last_request - shown.last_used_at <= timedelta(seconds=interval + 0.2)
        time.sleep(interval * 2)  # the writer's next round writes the very last use
        shown = auth.registrations.get(created.client_id)
        assert shown.last_used_at is not None and shown.secrets[0].last_used_at is not None
        assert timedelta(0) <= last_request - shown.last_used_at <= timedelta(milliseconds=50)
        assert len(writes) <= elapsed / interval + 3
