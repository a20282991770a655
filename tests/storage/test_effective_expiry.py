"""The effective expiry as SQL stores it (layout version 3's ``registrations.expires_at``), and where
a registration that never expires goes: no model value is one today (every credential ends, and a
registration without credentials ends at its creation), so the contract suite cannot make one; here
the SQL column is set to NULL by hand, and the in-Python reference is given a model that never ends."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from embedauth.clock import FrozenClock
from embedauth.models import Registration
from embedauth.storage import Storage
from embedauth.storage.base import registration_page
from embedauth.storage.sql import SQLStorage
from embedauth.storage.sql.rows import us
from tests.storage.test_contract import bump, certificate, listed, now, registration, secret

SQL_STORES = [pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("sqlite", "postgres", "mysql")]


def stored_expiry(storage: Storage, client_id: str) -> int | None:
    assert isinstance(storage, SQLStorage)
    with storage._engine.connect() as conn:
        query = text("SELECT expires_at FROM embedauth_registrations WHERE client_id = :c")
        value = conn.execute(query, {"c": client_id}).scalar_one()
    return None if value is None else int(value)


def never_expire(storage: Storage, client_id: str) -> None:
    assert isinstance(storage, SQLStorage)
    with storage._engine.begin() as conn:
        query = text("UPDATE embedauth_registrations SET expires_at = NULL WHERE client_id = :c")
        assert conn.execute(query, {"c": client_id}).rowcount == 1


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_the_stored_expiry_is_the_effective_one(storage: Storage, clock: FrozenClock) -> None:
    """Written by create and by every save (credentials change there), not by a use."""
    reg = registration(clock, secrets=(secret(clock, days=30),), certificates=(certificate(clock),))
    storage.create_registration(reg)
    assert reg.expires_at == reg.certificates[0].not_after
    assert stored_expiry(storage, reg.client_id) == us(reg.certificates[0].not_after)
    shorter = bump(reg, registration_expires_at=now(clock) + timedelta(days=7))
    assert storage.save_registration(shorter, expected_version=1)
    assert stored_expiry(storage, reg.client_id) == us(now(clock) + timedelta(days=7))
    assert not storage.save_registration(bump(reg, secrets=()), expected_version=1)  # stale: nothing
    assert stored_expiry(storage, reg.client_id) == us(now(clock) + timedelta(days=7))
    storage.record_use(reg.client_id, now(clock) + timedelta(days=1))
    assert stored_expiry(storage, reg.client_id) == us(now(clock) + timedelta(days=7))
    bare = bump(shorter, secrets=(), certificates=())
    assert storage.save_registration(bare, expected_version=2)
    assert stored_expiry(storage, reg.client_id) == us(reg.created_at)


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_the_stored_expiry_is_indexed(storage: Storage) -> None:
    assert isinstance(storage, SQLStorage)
    with storage._engine.connect() as conn:
        indexes = inspect(conn).get_indexes("embedauth_registrations")
    assert {"name": "ix_embedauth_registrations_expires_at", "column_names": ["expires_at"]} in [
        {"name": index["name"], "column_names": index["column_names"]} for index in indexes
    ]


@pytest.mark.parametrize("backend", SQL_STORES, indirect=True)
def test_a_null_expiry_sorts_after_every_time(storage: Storage, clock: FrozenClock) -> None:
    """Never (NULL) after every time ascending, before every time descending, and never "before"
    anything: on SQLite and MariaDB a NULL would come first by default, on PostgreSQL last."""
    regs = [registration(clock, secrets=(secret(clock, days=days),)) for days in (30, 60, 90)]
    for reg in regs:
        storage.create_registration(reg)
    never_expire(storage, regs[1].client_id)
    a, b, c = (r.client_id for r in regs)
    assert listed(storage.list_registrations("site-1", sort="expires_at")) == [a, c, b]
    assert listed(storage.list_registrations("site-1", sort="expires_at", descending=True)) == [b, c, a]
    assert listed(storage.list_registrations("site-1", sort="expires_at", offset=2, limit=5)) == [b]
    far = now(clock) + timedelta(days=36500)
    page = storage.list_registrations(None, expires_before=far, sort="expires_at")
    assert (page.total, listed(page)) == (2, [a, c])


@dataclasses.dataclass(frozen=True, slots=True)
class NeverEnding(Registration):
    """A registration that never stops working (the model has none; the contract allows for it)."""

    @property
    def expires_at(self) -> datetime | None:
        """Never."""
        return None


def test_the_reference_puts_never_expiring_last(clock: FrozenClock) -> None:
    """memory:// and Redis list through registration_page: None after every time, never "before"."""
    base = [registration(clock, secrets=(secret(clock, days=days),)) for days in (30, 60, 90)]
    regs = [
        base[0],
        NeverEnding(**{f.name: getattr(base[1], f.name) for f in dataclasses.fields(base[1])}),
        base[2],
    ]
    a, b, c = (r.client_id for r in regs)
    assert regs[1].expires_at is None
    assert listed(registration_page(regs, None, sort="expires_at")) == [a, c, b]
    assert listed(registration_page(regs, None, sort="expires_at", descending=True)) == [b, c, a]
    far = now(clock) + timedelta(days=36500)
    page = registration_page(regs, "site-1", expires_before=far, sort="expires_at")
    assert (page.total, listed(page)) == (2, [a, c])
