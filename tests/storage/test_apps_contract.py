"""The storage contract for apps and their connections, against every backend on a real server."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from embedauth.clock import FrozenClock
from embedauth.credentials.secrets import new_id
from embedauth.errors import AlreadyExists, AppNotFound, RegistrationNotFound
from embedauth.models import App, Connection
from embedauth.storage import Storage
from tests.storage.test_contract import now, permission, registration


def app(clock: FrozenClock, owner: str = "dev-1", **changes: object) -> App:
    base = App(
        app_id=new_id(),
        owner=owner,
        name="Backup service",
        description="Backs up your devices",
        scopes=("devices:read",),
        allowed_tenants=None,
        created_at=now(clock),
        updated_at=now(clock),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def connection(clock: FrozenClock, a: App, tenant: str, client_id: str) -> Connection:
    return Connection(a.app_id, tenant, client_id, connected_by="alice", created_at=now(clock))


def test_apps_round_trip_list_by_owner_and_refuse_a_taken_id(storage: Storage, clock: FrozenClock) -> None:
    first = app(clock, allowed_tenants=("site-1", "site-2"))
    storage.create_app(first)
    clock.advance(1)
    second = app(clock, owner="dev-2", scopes=(), description="")
    storage.create_app(second)
    assert storage.get_app(first.app_id) == first
    assert storage.get_app(second.app_id) == second
    assert storage.get_app("nope") is None
    assert storage.list_apps() == [first, second]
    assert storage.list_apps({"dev-2"}) == [second]
    assert storage.list_apps(set()) == []
    with pytest.raises(AlreadyExists):
        storage.create_app(dataclasses.replace(first, name="Other"))
    assert storage.get_app(first.app_id) == first


def test_save_app_is_a_compare_and_set(storage: Storage, clock: FrozenClock) -> None:
    stored = app(clock)
    storage.create_app(stored)
    renamed = dataclasses.replace(stored, name="Renamed", allowed_tenants=("site-9",), version=2)
    assert storage.save_app(renamed, expected_version=1)
    assert not storage.save_app(dataclasses.replace(stored, name="Lost", version=2), expected_version=1)
    assert storage.get_app(stored.app_id) == renamed
    with pytest.raises(AppNotFound):
        storage.save_app(app(clock), expected_version=1)


def test_concurrent_saves_of_one_version_let_exactly_one_through(
    storage: Storage, clock: FrozenClock
) -> None:
    stored = app(clock)
    storage.create_app(stored)
    attempts = [dataclasses.replace(stored, name=f"Writer {n}", version=2) for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda a: storage.save_app(a, expected_version=1), attempts))
    assert won.count(True) == 1
    assert storage.get_app(stored.app_id) == attempts[won.index(True)]


def test_one_connection_per_app_and_tenant(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    a = app(clock)
    storage.create_app(a)
    mine = registration(clock, tenant="site-1")
    again = registration(clock, tenant="site-1")
    theirs = registration(clock, tenant="site-2")
    for r in (mine, again, theirs):
        storage.create_registration(r)
    held = connection(clock, a, "site-1", mine.client_id)
    assert storage.add_connection(held)
    assert not storage.add_connection(connection(clock, a, "site-1", again.client_id))
    clock.advance(1)
    assert storage.add_connection(connection(clock, a, "site-2", theirs.client_id))
    listed = storage.list_connections(app_id=a.app_id)
    assert [(c.tenant, c.client_id) for c in listed] == [
        ("site-1", mine.client_id),
        ("site-2", theirs.client_id),
    ]
    assert listed[0] == held
    assert [c.client_id for c in storage.list_connections(tenants={"site-2"})] == [theirs.client_id]
    assert storage.list_connections(app_id="other") == []
    assert storage.list_connections(tenants=()) == []


def test_connecting_needs_the_app_and_the_registration(storage: Storage, clock: FrozenClock) -> None:
    a = app(clock)
    storage.create_app(a)
    r = registration(clock)
    storage.create_registration(r)
    with pytest.raises(AppNotFound):
        storage.add_connection(connection(clock, app(clock), "site-1", r.client_id))
    with pytest.raises(RegistrationNotFound):
        storage.add_connection(connection(clock, a, "site-1", "no-such-client"))
    assert storage.list_connections() == []


def test_a_connection_ends_with_its_registration_and_then_gives_way(
    storage: Storage, clock: FrozenClock
) -> None:
    a = app(clock)
    storage.create_app(a)
    first, second = registration(clock), registration(clock)
    storage.create_registration(first)
    storage.create_registration(second)
    assert storage.add_connection(connection(clock, a, "site-1", first.client_id))
    assert storage.delete_registrations([first.client_id]) == [first.client_id]
    assert storage.list_connections(app_id=a.app_id) == []
    clock.advance(timedelta(seconds=1).total_seconds())
    assert storage.add_connection(connection(clock, a, "site-1", second.client_id))
    assert [c.client_id for c in storage.list_connections()] == [second.client_id]


def test_deleting_an_app_deletes_its_connections_not_their_registrations(
    storage: Storage, clock: FrozenClock
) -> None:
    a, b = app(clock), app(clock)
    storage.create_app(a)
    storage.create_app(b)
    r1, r2 = registration(clock), registration(clock)
    storage.create_registration(r1)
    storage.create_registration(r2)
    storage.add_connection(connection(clock, a, "site-1", r1.client_id))
    storage.add_connection(connection(clock, b, "site-1", r2.client_id))
    assert storage.delete_app(a.app_id)
    assert not storage.delete_app(a.app_id)
    assert storage.get_app(a.app_id) is None
    assert storage.list_apps() == [b]
    assert [c.app_id for c in storage.list_connections()] == [b.app_id]
    assert storage.get_registration(r1.client_id) is not None


def test_concurrent_connections_of_one_tenant_let_exactly_one_through(
    storage: Storage, clock: FrozenClock
) -> None:
    a = app(clock)
    storage.create_app(a)
    candidates = [registration(clock) for _ in range(8)]
    for r in candidates:
        storage.create_registration(r)
    with ThreadPoolExecutor(8) as pool:
        won = list(
            pool.map(
                lambda r: storage.add_connection(connection(clock, a, "site-1", r.client_id)), candidates
            )
        )
    assert won.count(True) == 1
    [held] = storage.list_connections(app_id=a.app_id)
    assert held.client_id == candidates[won.index(True)].client_id
