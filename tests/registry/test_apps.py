"""Multi-tenant apps (``auth.apps`` and an admin's ``scope.apps``): the developer defines, each
tenant connects with the permissions it allows, pauses and restores; the developer sees who
connected with what, never a secret. Logic on memory://, the race on every backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from embedauth import (
    Admin,
    AppNotFound,
    Conflict,
    EmbedAuth,
    InvalidInput,
    InvalidToken,
    RegistrationNotFound,
    UnknownPermission,
)
from embedauth.hooks import hookimpl
from embedauth.registry.admin import AdminScope

DEV = Admin(identity="dana@dev.example", tenants=frozenset({"dev-1"}))
SITE1 = Admin(identity="alice@site1.example", tenants=frozenset({"site-1"}))
SITE2 = Admin(identity="bob@site2.example", tenants=frozenset({"site-2"}))


class Actions:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, str | None, dict[str, Any]]] = []

    @hookimpl
    def embedauth_admin_action(
        self, actor: str, action: str, tenant: str | None, target: str | None, detail: Any
    ) -> None:
        self.seen.append((actor, action, tenant, target, dict(detail)))


def scopes(auth: EmbedAuth) -> tuple[AdminScope, AdminScope, AdminScope]:
    return auth.admin_scope(DEV), auth.admin_scope(SITE1), auth.admin_scope(SITE2)


def token(auth: EmbedAuth, client_id: str, secret: str) -> str:
    return auth.tokens.client_credentials(client_id, secret).access_token


def test_the_connect_journey_for_two_tenants(auth: EmbedAuth) -> None:
    actions = Actions()
    auth.plugins.register(actions)
    dev, site1, site2 = scopes(auth)
    app = dev.apps.create(
        name="Backup service", description="Backs up devices", scopes=["devices:read", "devices:write"]
    )
    assert app.owner == "dev-1" and app.allowed_tenants is None

    # Each tenant sees what it requests, allows some or all of it, and gets its own credentials.
    assert [a.app_id for a in site1.apps.connectable()] == [app.app_id]
    one = site1.apps.connect(app.app_id, scopes=["devices:read"])  # devices:write declined
    two = site2.apps.connect(app.app_id)
    assert one.created.registration.tenant == "site-1" and two.created.registration.tenant == "site-2"
    assert one.created.registration.scopes == ("devices:read",)
    assert two.created.registration.scopes == ("devices:read", "devices:write")
    assert one.created.client_id != two.created.client_id
    assert one.created.client_secret != two.created.client_secret
    first = auth.verify(token(auth, one.created.client_id, one.created.client_secret))
    assert first.tenant == "site-1" and first.scopes == frozenset({"devices:read"})

    # The developer sees who connected with what; never a secret.
    seen = dev.apps.connections(app.app_id)
    assert [(c.connection.tenant, c.registration.scopes) for c in seen] == [
        ("site-1", ("devices:read",)),
        ("site-2", ("devices:read", "devices:write")),
    ]
    assert [c.connection.connected_by for c in seen] == [SITE1.identity, SITE2.identity]

    # A tenant pauses its connection (its registration): only its own access stops.
    site1_token = token(auth, one.created.client_id, one.created.client_secret)
    site1.registrations.disable(one.created.client_id)
    with pytest.raises(InvalidToken):
        auth.verify(site1_token)
    auth.verify(token(auth, two.created.client_id, two.created.client_secret))
    assert [c.registration.enabled for c in dev.apps.connections(app.app_id)] == [False, True]
    site1.registrations.enable(one.created.client_id)
    auth.verify(token(auth, one.created.client_id, one.created.client_secret))

    # Neither tenant reaches the other's connection, nor the developer's app as its own.
    with pytest.raises(RegistrationNotFound):
        site2.registrations.disable(one.created.client_id)
    with pytest.raises(AppNotFound):
        site1.apps.get(app.app_id)
    with pytest.raises(AppNotFound):
        site1.apps.connections(app.app_id)
    assert [c.connection.tenant for c in site2.apps.my_connections()] == ["site-2"]

    assert [(a[0], a[1]) for a in actions.seen if a[1].startswith("app.")] == [
        (DEV.identity, "app.create"),
        (SITE1.identity, "app.connect"),
        (SITE2.identity, "app.connect"),
    ]
    assert all(one.created.client_secret not in repr(a) for a in actions.seen)


def test_a_tenant_connects_once_and_again_after_deleting(auth: EmbedAuth) -> None:
    dev, site1, _ = scopes(auth)
    app = dev.apps.create(name="Sync", scopes=["devices:read"])
    first = site1.apps.connect(app.app_id)
    with pytest.raises(Conflict):
        site1.apps.connect(app.app_id)
    assert len(auth.registrations.list("site-1").items) == 1  # the refused one left nothing
    site1.registrations.delete(first.created.client_id)
    assert dev.apps.connections(app.app_id) == []
    again = site1.apps.connect(app.app_id)
    assert [c.connection.client_id for c in dev.apps.connections(app.app_id)] == [again.created.client_id]


def test_only_what_the_app_requests_may_be_allowed(auth: EmbedAuth) -> None:
    dev, site1, _ = scopes(auth)
    app = dev.apps.create(name="Reader", scopes=["devices:read"])
    with pytest.raises(InvalidInput) as refused:
        site1.apps.connect(app.app_id, scopes=["devices:read", "users:read"])
    assert refused.value.field == "scopes"
    with pytest.raises(UnknownPermission):
        dev.apps.create(name="Ghost", scopes=["nothing:here"])
    assert auth.registrations.list("site-1").total == 0


def test_allowed_tenants_bound_who_may_connect(auth: EmbedAuth) -> None:
    dev, site1, site2 = scopes(auth)
    app = dev.apps.create(name="Private", scopes=["devices:read"], allowed_tenants=["site-1"])
    assert site2.apps.connectable() == []
    with pytest.raises(AppNotFound):
        site2.apps.connect(app.app_id)
    one = site1.apps.connect(app.app_id)
    # Taking site-1 off the list pauses its connection.
    dev.apps.update(app.app_id, allowed_tenants=["site-2"])
    assert auth.registrations.get(one.created.client_id).enabled is False
    assert [a.app_id for a in site2.apps.connectable()] == [app.app_id]


def test_narrowing_the_app_narrows_every_connection_at_once(auth: EmbedAuth) -> None:
    dev, site1, _ = scopes(auth)
    app = dev.apps.create(name="Wide", scopes=["devices:read", "devices:write"])
    one = site1.apps.connect(app.app_id)
    held = token(auth, one.created.client_id, one.created.client_secret)
    dev.apps.update(app.app_id, scopes=["devices:read"])
    assert auth.registrations.get(one.created.client_id).scopes == ("devices:read",)
    with pytest.raises(InvalidToken):  # issued with devices:write
        auth.verify(held)
    # Widening does not widen a connection: its tenant allows what it allows.
    dev.apps.update(app.app_id, scopes=["devices:read", "devices:write", "users:read"])
    assert auth.registrations.get(one.created.client_id).scopes == ("devices:read",)


def test_deleting_the_app_deletes_every_connection(auth: EmbedAuth) -> None:
    dev, site1, site2 = scopes(auth)
    app = dev.apps.create(name="Gone soon", scopes=["devices:read"])
    ones = [s.apps.connect(app.app_id).created for s in (site1, site2)]
    assert sorted(dev.apps.delete(app.app_id)) == sorted(c.client_id for c in ones)
    for created in ones:
        with pytest.raises(RegistrationNotFound):
            auth.registrations.get(created.client_id)
    with pytest.raises(AppNotFound):
        dev.apps.get(app.app_id)


def test_owners_are_the_admins_tenants(auth: EmbedAuth) -> None:
    dev, site1, _ = scopes(auth)
    with pytest.raises(InvalidInput) as refused:
        dev.apps.create(owner="site-1", name="Not mine", scopes=[])
    assert refused.value.field == "owner"
    app = dev.apps.create(name="Mine", scopes=[])
    with pytest.raises(AppNotFound):
        site1.apps.update(app.app_id, name="Taken over")
    with pytest.raises(AppNotFound):
        site1.apps.delete(app.app_id)
    assert dev.apps.get(app.app_id).name == "Mine"
    assert site1.apps.list() == []


def test_two_admins_connecting_at_once_get_one_connection(backend_auth: EmbedAuth) -> None:
    auth = backend_auth
    dev = auth.admin_scope(DEV)
    app = dev.apps.create(name="Raced", scopes=["devices:read"])
    admins = [auth.admin_scope(Admin(identity=f"admin-{n}", tenants=frozenset({"site-1"}))) for n in range(6)]

    def attempt(scope: AdminScope) -> str | None:
        try:
            return scope.apps.connect(app.app_id).created.client_id
        except Conflict:
            return None

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, admins))
    winners = [o for o in outcomes if o is not None]
    assert len(winners) == 1
    assert [c.connection.client_id for c in dev.apps.connections(app.app_id)] == winners
    assert [r.client_id for r in auth.registrations.list("site-1").items] == winners  # no orphan left


def test_app_actions_are_in_the_stored_audit_trail_without_secrets(auth: EmbedAuth) -> None:
    dev, site1, _ = scopes(auth)
    app = dev.apps.create(name="Audited", scopes=["devices:read"])
    connected = site1.apps.connect(app.app_id)
    dev.apps.update(app.app_id, name="Audited v2")
    dev.apps.delete(app.app_id)
    auth.flush()
    records = [r for r in auth.audit.list().items if r.action.startswith("app.")]
    assert sorted((r.actor, r.action) for r in records) == sorted(
        [
            (DEV.identity, "app.create"),
            (SITE1.identity, "app.connect"),
            (DEV.identity, "app.update"),
            (DEV.identity, "app.delete"),
        ]
    )
    assert all(connected.created.client_secret not in repr(r) for r in auth.audit.list(limit=500).items)
