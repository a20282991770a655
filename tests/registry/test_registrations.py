"""The registration lifecycle (``auth.registrations``): logic on memory://, atomicity on every backend."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from embedauth import (
    Conflict,
    CredentialNotFound,
    CustomerScope,
    CustomerScopeKind,
    EmbedAuth,
    InvalidCertificate,
    InvalidInput,
    InvalidToken,
    PermissionNotFound,
    RegistrationNotFound,
    StorageError,
    TooManySecrets,
    UnknownPermission,
)
from embedauth.clock import FrozenClock, utcnow
from embedauth.credentials.secrets import parse_client_secret
from embedauth.hooks import hookimpl
from embedauth.models import Registration, RevocationKind
from tests import keys
from tests.conftest import TEST_SETTINGS
from tests.registry.helpers import create, works
from tests.storage.test_contract import hammer

DAY = timedelta(days=1)


def now(auth: EmbedAuth) -> datetime:
    return utcnow(auth.clock)


# ------------------------------------------------------------------------- create


def test_create_returns_the_secret_once(auth: EmbedAuth) -> None:
    created = create(auth, description="Nightly", customer_scope="customers:c2,c1")
    reg = created.registration
    assert parse_client_secret(created.client_secret) == created.client_secret
    assert created.client_secret not in repr(created)
    assert created.client_id == reg.client_id
    assert (reg.tenant, reg.name, reg.description, reg.scopes) == (
        "site-1",
        "Backup script",
        "Nightly",
        ("devices:read",),
    )
    assert reg.customer_scope == CustomerScope(CustomerScopeKind.CUSTOMERS, ("c1", "c2"))
    assert reg.enabled and reg.last_used_at is None and reg.version == 1
    [secret] = reg.secrets
    assert secret.hint == created.client_secret[:7]
    assert created.client_secret not in secret.secret_hash
    assert secret.secret_hash.startswith("$argon2id$")
    assert auth.registrations.get(reg.client_id) == reg
    assert works(auth, reg.client_id, created.client_secret)


@pytest.mark.parametrize("days", [365, 730, 1095])
def test_secret_lifetimes(auth: EmbedAuth, days: int) -> None:
    reg = create(auth, secret_days=days).registration
    assert reg.secrets[0].expires_at == now(auth) + timedelta(days=days)
    assert reg.expires_at == reg.secrets[0].expires_at


def test_custom_secret_expiry_and_registration_expiry(auth: EmbedAuth) -> None:
    secret_end = now(auth) + timedelta(days=500, hours=3)
    reg_end = now(auth) + timedelta(days=90)
    reg = create(auth, secret_expires_at=secret_end, expires_at=reg_end).registration
    assert reg.secrets[0].expires_at == secret_end
    assert reg.registration_expires_at == reg_end
    assert reg.expires_at == reg_end  # the earlier of the two


def test_create_disabled(auth: EmbedAuth) -> None:
    assert not create(auth, enabled=False).registration.enabled


BAD_CREATES: list[tuple[str, dict[str, Any]]] = [
    ("tenant", {"tenant": ""}),
    ("tenant", {"tenant": "site 1"}),
    ("tenant", {"tenant": "x" * 129}),
    ("name", {"name": "   "}),
    ("name", {"name": "x" * 201}),
    ("name", {"name": "two\nlines"}),
    ("description", {"description": "x" * 2001}),
    ("permission name", {"scopes": ["devices read"]}),
    ("one of 365, 730, 1095", {"secret_days": 100}),
    ("future", {"secret_expires_at": datetime(2020, 1, 1).astimezone()}),
    ("at most 1095 days", {"secret_days": None, "secret_expires_at": "far"}),
    ("timezone-aware", {"secret_expires_at": datetime(2030, 1, 1)}),
    ("either", {"secret_days": 365, "secret_expires_at": "soon"}),
    ("future", {"expires_at": datetime(2020, 1, 1).astimezone()}),
    ("at most 3650 days", {"expires_at": "far"}),
    ("customer scope", {"customer_scope": "everyone"}),
    ("customer or group id", {"customer_scope": "customers:"}),
]


@pytest.mark.parametrize(("message", "kwargs"), BAD_CREATES)
def test_bad_create_stores_nothing(auth: EmbedAuth, message: str, kwargs: dict[str, Any]) -> None:
    resolve = {"far": now(auth) + timedelta(days=4000), "soon": now(auth) + DAY}
    kwargs = {
        k: resolve.get(v, v) if isinstance(v, str) and k.endswith("expires_at") else v
        for k, v in kwargs.items()
    }
    with pytest.raises(InvalidInput, match=message):
        create(auth, **kwargs)
    assert auth.registrations.list("site-1").total == 0


def test_unknown_scope_stores_nothing(auth: EmbedAuth) -> None:
    with pytest.raises(UnknownPermission, match="devices:delete"):
        create(auth, scopes=["devices:read", "devices:delete"])
    assert auth.registrations.list("site-1").total == 0


def test_get_unknown(auth: EmbedAuth) -> None:
    with pytest.raises(RegistrationNotFound):
        auth.registrations.get("00000000-0000-4000-8000-000000000000")


def test_list_paging_and_filter(auth: EmbedAuth, clock: FrozenClock) -> None:
    for i in range(5):
        create(auth, name=f"Script {i}" if i % 2 else f"Backup {i}")
        clock.advance(1)
    page = auth.registrations.list("site-1", offset=1, limit=2)
    assert page.total == 5 and [r.name for r in page.items] == ["Script 1", "Backup 2"]
    assert [r.name for r in auth.registrations.list("site-1", name_contains="BACKUP").items] == [
        "Backup 0",
        "Backup 2",
        "Backup 4",
    ]
    with pytest.raises(InvalidInput):
        auth.registrations.list("site-1", limit=0)
    with pytest.raises(InvalidInput):
        auth.registrations.list("site-1", offset=-1)


# ------------------------------------------------------------------------- edit


def test_update(auth: EmbedAuth, clock: FrozenClock) -> None:
    reg = create(auth).registration
    clock.advance(5)
    updated = auth.registrations.update(
        reg.client_id,
        name="Renamed",
        description=None,
        scopes="devices:write users:read",
        customer_scope="groups:g1",
    )
    assert (updated.name, updated.description, updated.scopes) == (
        "Renamed",
        "",
        ("devices:write", "users:read"),
    )
    assert str(updated.customer_scope) == "groups:g1"
    assert updated.version == 2 and updated.updated_at == reg.updated_at + timedelta(seconds=5)
    assert auth.registrations.get(reg.client_id) == updated
    assert auth.registrations.update(reg.client_id, name="Only name").scopes == updated.scopes


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scopes": ["nope:read"]}, UnknownPermission),
        ({"name": ""}, InvalidInput),
        ({"customer_scope": "x:y"}, InvalidInput),
    ],
)
def test_bad_update_changes_nothing(auth: EmbedAuth, kwargs: dict[str, Any], error: type[Exception]) -> None:
    reg = create(auth).registration
    with pytest.raises(error):
        auth.registrations.update(reg.client_id, **kwargs)
    assert auth.registrations.get(reg.client_id) == reg


# ------------------------------------------------------------------------- secrets


def revocations(auth: EmbedAuth) -> list[tuple[RevocationKind, str]]:
    """The stored entries that refuse something (not the change notices every change writes)."""
    return [
        (r.kind, r.subject)
        for r in auth.storage.revocations_after(0)
        if r.kind is not RevocationKind.REGISTRATION or r.generation
    ]


def test_every_change_is_announced(auth: EmbedAuth) -> None:
    """Each saved change leaves a change notice (a registration entry that refuses nothing) with a
    new ``seq``, after the change: what keeps other processes' registration views true."""
    created = create(auth)
    assert auth.storage.revocations_after(0) == []  # a new registration is in nobody's view
    seqs: list[int] = []
    for change in (
        lambda: auth.registrations.update(created.client_id, name="renamed"),
        lambda: auth.registrations.add_secret(created.client_id),
        lambda: auth.registrations.update(created.client_id, name="again"),
    ):
        change()
        [notice] = auth.storage.revocations_after(max(seqs, default=0))
        assert (notice.kind, notice.subject, notice.generation) == (
            RevocationKind.REGISTRATION,
            created.client_id,
            0,
        )
        seqs.append(notice.seq)
    assert seqs == sorted(set(seqs))
    auth.revocations.sync()
    assert auth.verify(auth.tokens.client_credentials(created.client_id, created.client_secret).access_token)


def test_rotate_secret_kills_the_old_one(auth: EmbedAuth) -> None:
    created = create(auth)
    rotated = auth.registrations.rotate_secret(created.client_id, secret_days=730)
    assert rotated.client_secret != created.client_secret
    assert not works(auth, created.client_id, created.client_secret)
    assert works(auth, created.client_id, rotated.client_secret)
    assert rotated.registration.secrets == (rotated.credential,)
    assert rotated.credential.expires_at == now(auth) + timedelta(days=730)
    assert revocations(auth) == [(RevocationKind.CREDENTIAL, created.credential.id)]


def test_second_secret_for_a_switch(auth: EmbedAuth) -> None:
    created = create(auth)
    second = auth.registrations.add_secret(created.client_id, secret_days=1095)
    assert works(auth, created.client_id, created.client_secret)
    assert works(auth, created.client_id, second.client_secret)
    with pytest.raises(TooManySecrets):
        auth.registrations.add_secret(created.client_id)
    reg = auth.registrations.delete_secret(created.client_id, created.credential.id)
    assert reg.secrets == (second.credential,)
    assert not works(auth, created.client_id, created.client_secret)
    assert works(auth, created.client_id, second.client_secret)
    assert revocations(auth) == [(RevocationKind.CREDENTIAL, created.credential.id)]
    with pytest.raises(CredentialNotFound):
        auth.registrations.delete_secret(created.client_id, created.credential.id)


def test_expired_secrets_do_not_count_toward_the_limit(auth: EmbedAuth, clock: FrozenClock) -> None:
    created = create(auth, secret_expires_at=now(auth) + DAY)
    auth.registrations.add_secret(created.client_id)
    clock.advance(2 * 86400)
    third = auth.registrations.add_secret(created.client_id)
    assert created.credential.id not in [s.id for s in third.registration.secrets]
    assert len(third.registration.secrets) == 2


@pytest.mark.parametrize("client_id", ["a\x00b", "", "x" * 256, "é", None, 42])
def test_impossible_client_ids_never_reach_storage(backend_auth: EmbedAuth, client_id: Any) -> None:
    """A NUL byte would make PostgreSQL raise; such ids are refused as unknown instead."""
    created = create(backend_auth)
    assert not works(backend_auth, client_id, created.client_secret)
    with pytest.raises(RegistrationNotFound):
        backend_auth.registrations.get(client_id)
    assert backend_auth.registrations.delete_many([client_id]) == []


@pytest.mark.parametrize("text", ["a\x00b", "x" * 201, "two\nlines"])
def test_bad_search_text_is_refused(backend_auth: EmbedAuth, text: str) -> None:
    with pytest.raises(InvalidInput):
        backend_auth.registrations.list("site-1", name_contains=text)
    with pytest.raises(InvalidInput):
        backend_auth.permissions.list(text)
    with pytest.raises(PermissionNotFound):
        backend_auth.permissions.get(text)


# ------------------------------------------------------------------------- state


def test_disable_and_enable(auth: EmbedAuth) -> None:
    reg = create(auth).registration
    disabled = auth.registrations.disable(reg.client_id)
    assert not disabled.enabled and disabled.version == 2
    assert revocations(auth) == [(RevocationKind.REGISTRATION, reg.client_id)]
    assert auth.registrations.enable(reg.client_id).enabled
    assert not reg.is_active(now(auth) + DAY) or reg.enabled


def test_renew(auth: EmbedAuth) -> None:
    reg = create(auth, expires_at=now(auth) + timedelta(days=30)).registration
    renewed = auth.registrations.renew(reg.client_id, days=365)
    assert renewed.registration_expires_at == now(auth) + timedelta(days=365)
    until = now(auth) + timedelta(days=400)
    assert auth.registrations.renew(reg.client_id, expires_at=until).registration_expires_at == until
    with pytest.raises(InvalidInput, match="already expires"):
        auth.registrations.renew(reg.client_id, days=30)
    with pytest.raises(InvalidInput):
        auth.registrations.renew(reg.client_id)
    with pytest.raises(InvalidInput):
        auth.registrations.renew(reg.client_id, days=0)
    with pytest.raises(InvalidInput, match="at most"):
        auth.registrations.renew(reg.client_id, days=5000)
    assert auth.registrations.get(reg.client_id).registration_expires_at == until


def test_expired_registration_is_inactive(auth: EmbedAuth, clock: FrozenClock) -> None:
    reg = create(auth, expires_at=now(auth) + DAY).registration
    assert reg.is_active(now(auth))
    clock.advance(86400)
    assert not reg.is_active(now(auth))


def test_delete(auth: EmbedAuth) -> None:
    regs = [create(auth).registration for _ in range(3)]
    auth.registrations.delete(regs[0].client_id)
    with pytest.raises(RegistrationNotFound):
        auth.registrations.delete(regs[0].client_id)
    missing = "00000000-0000-4000-8000-000000000000"
    deleted = auth.registrations.delete_many(
        [regs[1].client_id, missing, regs[2].client_id, regs[1].client_id]
    )
    assert deleted == [regs[1].client_id, regs[2].client_id]
    assert auth.registrations.list("site-1").total == 0
    assert revocations(auth) == [(RevocationKind.REGISTRATION, r.client_id) for r in regs]


@pytest.mark.parametrize(
    "operation",
    ["disable", "enable", "rotate_secret", "add_secret", "delete", "update", "renew"],
)
def test_unknown_client_id(auth: EmbedAuth, operation: str) -> None:
    extra: dict[str, dict[str, Any]] = {"update": {"name": "x"}, "renew": {"days": 1}}
    kwargs = extra.get(operation, {})
    with pytest.raises(RegistrationNotFound):
        getattr(auth.registrations, operation)("00000000-0000-4000-8000-000000000000", **kwargs)


# ------------------------------------------------------------------------- hooks


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def embedauth_registration_created(self, registration: Registration) -> None:
        self.events.append(("created", registration.name))

    @hookimpl
    def embedauth_registration_updated(self, registration: Registration, action: str) -> None:
        self.events.append(("updated", action))

    @hookimpl
    def embedauth_secret_rotated(self, registration: Registration, credential: Any) -> None:
        self.events.append(("rotated", credential.id))

    @hookimpl
    def embedauth_registration_deleted(self, client_id: str, tenant: str) -> None:
        self.events.append(("deleted", tenant))


def test_hooks_observe_the_lifecycle(clock: FrozenClock) -> None:
    recorder = Recorder()
    with EmbedAuth("memory://", clock=clock, plugins=[recorder], **TEST_SETTINGS) as auth:
        created = auth.registrations.create(tenant="t1", name="Job")
        auth.registrations.update(created.client_id, name="Job 2")
        rotated = auth.registrations.rotate_secret(created.client_id)
        auth.registrations.disable(created.client_id)
        auth.registrations.delete(created.client_id)
        assert created.client_secret not in repr(recorder.events)
    assert recorder.events == [
        ("created", "Job"),
        ("updated", "edit"),
        ("rotated", rotated.credential.id),
        ("updated", "disable"),
        ("deleted", "t1"),
    ]


def test_plugin_managers_are_per_instance(clock: FrozenClock) -> None:
    recorder = Recorder()
    with EmbedAuth("memory://", clock=clock, plugins=[recorder], **TEST_SETTINGS):
        pass
    with EmbedAuth("memory://", clock=clock, **TEST_SETTINGS) as plain:
        plain.registrations.create(tenant="t1", name="Job")
    assert recorder.events == []


# ------------------------------------------------------------------------- atomicity, every backend


def test_concurrent_rotations(backend_auth: EmbedAuth) -> None:
    """16 threads rotate one registration's secret: applied one after another, none lost, one current."""
    auth = backend_auth
    created = create(auth)
    results = hammer(16, lambda _i: auth.registrations.rotate_secret(created.client_id))
    secrets = [r.client_secret for r in results]
    assert len(set(secrets)) == 16
    final = auth.registrations.get(created.client_id)
    assert final.version == 17
    assert len(final.secrets) == 1
    assert [works(auth, created.client_id, s) for s in secrets].count(True) == 1
    assert not works(auth, created.client_id, created.client_secret)


def test_concurrent_second_secrets(backend_auth: EmbedAuth) -> None:
    """16 threads each add a second secret: exactly one gets it, the limit holds."""
    auth = backend_auth
    created = create(auth)

    def add(_i: int) -> str:
        try:
            auth.registrations.add_secret(created.client_id)
            return "added"
        except TooManySecrets:
            return "refused"

    results = hammer(16, add)
    assert results.count("added") == 1
    assert len(auth.registrations.get(created.client_id).secrets) == 2


def test_lifecycle_on_every_backend(backend_auth: EmbedAuth, clock: FrozenClock) -> None:
    auth = backend_auth
    created = create(auth, customer_scope="groups:g1")
    client_id = created.client_id
    assert works(auth, client_id, created.client_secret)
    auth.registrations.update(client_id, scopes=["devices:read", "devices:write"])
    auth.registrations.disable(client_id)
    auth.registrations.enable(client_id)
    second = auth.registrations.add_secret(client_id)
    auth.registrations.delete_secret(client_id, created.credential.id)
    assert not works(auth, client_id, created.client_secret)
    assert works(auth, client_id, second.client_secret)
    reg = auth.registrations.get(client_id)
    assert reg.version == 6 and reg.scopes == ("devices:read", "devices:write") and reg.enabled
    assert [r.client_id for r in auth.registrations.list("site-1").items] == [client_id]
    auth.registrations.delete(client_id)
    assert auth.registrations.list("site-1").total == 0
    assert {kind for kind, _ in revocations(auth)} == {RevocationKind.REGISTRATION, RevocationKind.CREDENTIAL}


def test_conflict_after_too_many_attempts(auth: EmbedAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    created = create(auth)
    monkeypatch.setattr(auth.storage, "save_registration", lambda *a, **k: False)
    with pytest.raises(Conflict):
        auth.registrations.update(created.client_id, name="never")
    assert dataclasses.replace(auth.registrations.get(created.client_id)) == created.registration


def test_a_failed_pause_heals(auth: EmbedAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change whose revocation was written but whose save failed moves the registration to the
    revoked generation, so that new tokens verify again (old ones stay refused: fail closed)."""
    created = create(auth)
    old = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    save = auth.storage.save_registration
    calls = []

    def fail_once(registration: Registration, *, expected_version: int) -> bool:
        calls.append(registration.generation)
        if len(calls) == 1:
            raise StorageError("the connection dropped")
        return save(registration, expected_version=expected_version)

    monkeypatch.setattr(auth.storage, "save_registration", fail_once)
    with pytest.raises(StorageError):
        auth.registrations.update(created.client_id, scopes=[])  # narrowing: revokes generation 1
    healed = auth.registrations.get(created.client_id)
    assert healed.generation == 2 and healed.scopes == created.registration.scopes  # nothing else changed
    with pytest.raises(InvalidToken):
        auth.verify(old)
    assert auth.verify(auth.tokens.client_credentials(created.client_id, created.client_secret).access_token)


def test_every_change_that_takes_rights_away_revokes(auth: EmbedAuth) -> None:
    created = auth.registrations.create(
        tenant="t", name="n", scopes=["devices:read", "users:read"], customer_scope="customers:a,b"
    )

    def token() -> str:
        return auth.tokens.client_credentials(created.client_id, created.client_secret).access_token

    changes: list[tuple[dict[str, Any], bool]] = [
        ({"name": "renamed", "description": "d"}, False),
        ({"scopes": ["devices:read", "users:read", "devices:write"]}, False),
        ({"customer_scope": "customers:a,b,c"}, False),
        ({"customer_scope": "all"}, False),
        ({"customer_scope": "customers:a"}, True),
        ({"customer_scope": "groups:a"}, True),
        ({"scopes": ["devices:read"]}, True),
    ]
    for change, revokes in changes:
        before = token()
        auth.registrations.update(created.client_id, **change)
        if revokes:
            with pytest.raises(InvalidToken):
                auth.verify(before)
        else:
            assert auth.verify(before)
        assert auth.verify(token())


def test_a_certificate_valid_for_decades_is_refused(auth: EmbedAuth, clock: FrozenClock) -> None:
    """Certificates are held to the secrets' limit (max_certificate_days, three years by default)."""
    created = create(auth)
    key = keys.private_key("p256")
    with pytest.raises(InvalidCertificate, match="at most 1095 days ahead"):
        auth.registrations.add_certificate(
            created.client_id, keys.certificate_pem(key, now=clock(), days=30 * 365)
        )
    assert auth.registrations.get(created.client_id).certificates == ()
    added = auth.registrations.add_certificate(
        created.client_id, keys.certificate_pem(key, now=clock(), days=1000)
    )
    assert added.key_type == "EC P-256"
