"""The storage contract (``embedauth/storage/base.py``), run against every backend on a real server."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from embedauth.clock import FrozenClock, utcnow
from embedauth.credentials.secrets import new_client_id, new_id
from embedauth.errors import (
    AlreadyExists,
    NotFound,
    PermissionInUse,
    PermissionNotFound,
    RefreshTokenNotFound,
    RegistrationNotFound,
    UnknownPermission,
)
from embedauth.models import (
    Access,
    AuditRecord,
    CertificateCredential,
    CustomerScope,
    CustomerScopeKind,
    Page,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    RevocationKind,
    SecretCredential,
    SigningKey,
)
from embedauth.storage import Storage
from embedauth.storage.base import SCHEMA_VERSION, RegistrationSort

T = TypeVar("T")


def now(clock: FrozenClock) -> datetime:
    return utcnow(clock)


def permission(
    clock: FrozenClock, name: str = "devices:read", description: str = "List devices"
) -> Permission:
    return Permission(name, description, Access.READ, now(clock))


def secret(clock: FrozenClock, days: int = 365) -> SecretCredential:
    return SecretCredential(
        id=new_id(),
        hint="eas_abc",
        secret_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        created_at=now(clock),
        expires_at=now(clock) + timedelta(days=days),
    )


def certificate(clock: FrozenClock) -> CertificateCredential:
    return CertificateCredential(
        id=new_id(),
        thumbprint="x" * 43,
        subject="CN=backup",
        key_type="EC P-256",
        public_key_pem="-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
        not_before=now(clock) - timedelta(days=1),
        not_after=now(clock) + timedelta(days=90),
        created_at=now(clock),
    )


def registration(
    clock: FrozenClock, tenant: str = "site-1", name: str = "Backup script", **changes: object
) -> Registration:
    base = Registration(
        client_id=new_client_id(),
        tenant=tenant,
        name=name,
        description="Nightly backup",
        scopes=(),
        customer_scope=CustomerScope(CustomerScopeKind.CUSTOMERS, ("c1", "c2")),
        enabled=True,
        created_at=now(clock),
        updated_at=now(clock),
        registration_expires_at=now(clock) + timedelta(days=700),
        secrets=(secret(clock),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def bump(reg: Registration, **changes: object) -> Registration:
    return dataclasses.replace(reg, version=reg.version + 1, **changes)  # type: ignore[arg-type]


def hammer(threads: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` on ``threads`` threads released at the same moment."""
    barrier = threading.Barrier(threads)

    def run(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads)))


# -------------------------------------------------------------------- schema


def test_schema_is_current(storage: Storage) -> None:
    assert storage.schema_version() == SCHEMA_VERSION


# -------------------------------------------------------------------- permissions


def test_permission_round_trip(storage: Storage, clock: FrozenClock) -> None:
    p = Permission("devices:write", "Change devices — ünïcode", Access.WRITE, now(clock))
    storage.add_permission(p)
    assert storage.get_permission("devices:write") == p
    assert storage.get_permission("devices:nope") is None


def test_permission_names_are_unique(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    with pytest.raises(AlreadyExists):
        storage.add_permission(permission(clock, description="again"))
    assert storage.get_permission("devices:read") == permission(clock)


def test_permission_names_are_case_sensitive(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock, "devices:read"))
    storage.add_permission(permission(clock, "Devices:Read"))
    assert [p.name for p in storage.list_permissions()] == ["Devices:Read", "devices:read"]


def test_list_permissions_sorted_and_filtered(storage: Storage, clock: FrozenClock) -> None:
    for name, description in [
        ("users:read", "List users"),
        ("devices:write", "Reboot"),
        ("devices:read", "List DEVICES"),
    ]:
        storage.add_permission(permission(clock, name, description))
    assert [p.name for p in storage.list_permissions()] == ["devices:read", "devices:write", "users:read"]
    assert [p.name for p in storage.list_permissions(contains="DEVICES")] == ["devices:read", "devices:write"]
    assert [p.name for p in storage.list_permissions(contains="list")] == ["devices:read", "users:read"]
    assert storage.list_permissions(contains="%") == []
    assert storage.list_permissions(contains="_") == []


def test_remove_permission(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    storage.remove_permission("devices:read")
    assert storage.get_permission("devices:read") is None
    with pytest.raises(PermissionNotFound):
        storage.remove_permission("devices:read")


def test_permission_in_use_cannot_be_removed(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    reg = registration(clock, scopes=("devices:read",))
    storage.create_registration(reg)
    with pytest.raises(PermissionInUse):
        storage.remove_permission("devices:read")
    assert storage.save_registration(bump(reg, scopes=()), expected_version=1)
    storage.remove_permission("devices:read")


def test_permission_released_by_delete(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    reg = registration(clock, scopes=("devices:read",))
    storage.create_registration(reg)
    storage.delete_registrations([reg.client_id])
    storage.remove_permission("devices:read")


def test_failed_writes_hold_no_permission(storage: Storage, clock: FrozenClock) -> None:
    """A refused create or a stale save leaves no hold on the permissions it named."""
    storage.add_permission(permission(clock, "a:read"))
    storage.add_permission(permission(clock, "b:read"))
    reg = registration(clock)
    storage.create_registration(reg)
    with pytest.raises(AlreadyExists):
        storage.create_registration(dataclasses.replace(reg, scopes=("a:read",)))
    assert storage.save_registration(bump(reg, name="v2"), expected_version=1)
    assert not storage.save_registration(bump(reg, scopes=("b:read",)), expected_version=1)
    with pytest.raises(UnknownPermission):
        storage.create_registration(registration(clock, scopes=("b:read", "c:read")))
    storage.remove_permission("a:read")
    storage.remove_permission("b:read")


def test_remove_permission_races_create(storage: Storage, clock: FrozenClock) -> None:
    """Removal and a registration taking the permission race; never both win."""
    for round_ in range(5):
        name = f"race:{round_}"
        storage.add_permission(permission(clock, name))
        reg = registration(clock, scopes=(name,))

        def work(i: int, name: str = name, reg: Registration = reg) -> str:
            try:
                if i % 2:
                    storage.remove_permission(name)
                else:
                    storage.create_registration(dataclasses.replace(reg, client_id=new_client_id()))
                return "ok"
            except (PermissionInUse, UnknownPermission, PermissionNotFound) as exc:
                return type(exc).__name__

        hammer(8, work)
        holders = [r for r in storage.list_registrations("site-1", limit=1000).items if name in r.scopes]
        if storage.get_permission(name) is None:
            assert holders == []
        else:
            assert holders


# -------------------------------------------------------------------- registrations


def test_registration_round_trip(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    storage.add_permission(permission(clock, "devices:write"))
    reg = registration(
        clock,
        name="Bäckup «script»",
        scopes=("devices:read", "devices:write"),
        secrets=(secret(clock), secret(clock, days=30)),
        certificates=(certificate(clock),),
    )
    storage.create_registration(reg)
    assert storage.get_registration(reg.client_id) == reg
    assert storage.get_registration(new_client_id()) is None


def test_registration_without_optional_fields(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(
        clock, description="", registration_expires_at=None, secrets=(), customer_scope=CustomerScope()
    )
    storage.create_registration(reg)
    assert storage.get_registration(reg.client_id) == reg


def test_client_ids_are_unique(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    with pytest.raises(AlreadyExists):
        storage.create_registration(dataclasses.replace(reg, name="Other"))
    assert storage.get_registration(reg.client_id) == reg


def test_unknown_scope_stores_nothing(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock))
    reg = registration(clock, scopes=("devices:read", "nope:read"))
    with pytest.raises(UnknownPermission, match="nope:read"):
        storage.create_registration(reg)
    assert storage.get_registration(reg.client_id) is None
    assert storage.list_registrations("site-1").total == 0
    storage.remove_permission("devices:read")  # no reference was left behind


def test_list_registrations_by_tenant_in_creation_order(storage: Storage, clock: FrozenClock) -> None:
    made = []
    for i in range(5):
        reg = registration(clock, name=f"Script {i}", created_at=now(clock))
        storage.create_registration(reg)
        made.append(reg)
        clock.advance(1)
    storage.create_registration(registration(clock, tenant="site-2"))
    page = storage.list_registrations("site-1")
    assert page.total == 5
    assert [r.client_id for r in page.items] == [r.client_id for r in made]
    assert page.items[0] == made[0]


def test_list_registrations_pages(storage: Storage, clock: FrozenClock) -> None:
    ids = []
    for i in range(7):
        reg = registration(clock, name=f"Script {i}", created_at=now(clock))
        storage.create_registration(reg)
        ids.append(reg.client_id)
        clock.advance(0.5)
    first = storage.list_registrations("site-1", offset=0, limit=3)
    second = storage.list_registrations("site-1", offset=3, limit=3)
    third = storage.list_registrations("site-1", offset=6, limit=3)
    assert (first.total, second.total, third.total) == (7, 7, 7)
    assert [r.client_id for r in (*first.items, *second.items, *third.items)] == ids
    assert storage.list_registrations("site-1", offset=10, limit=3).items == []


def test_list_every_tenant(storage: Storage, clock: FrozenClock) -> None:
    """No tenant: every tenant's, oldest first, paged; deleted ones gone from it too."""
    made = []
    for i in range(6):
        reg = registration(clock, tenant=f"site-{i % 3}", name=f"Script {i}", created_at=now(clock))
        storage.create_registration(reg)
        made.append(reg)
        clock.advance(1)
    page = storage.list_registrations(None, limit=4)
    assert page.total == 6 and [r.client_id for r in page.items] == [r.client_id for r in made[:4]]
    assert [r.client_id for r in storage.list_registrations(None, offset=4).items] == [
        r.client_id for r in made[4:]
    ]
    storage.delete_registrations([made[0].client_id])
    assert storage.list_registrations(None).total == 5
    assert [r.name for r in storage.list_registrations(None, name_contains="script 5").items] == ["Script 5"]


def test_generation_round_trips(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock, generation=4)
    storage.create_registration(reg)
    assert storage.save_registration(bump(reg, generation=5), expected_version=1)
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and stored.generation == 5


def test_identifiers_are_exact(storage: Storage, clock: FrozenClock) -> None:
    """No padding or folding anywhere (MariaDB's PAD SPACE collations made 'x' and 'x ' one key)."""
    until = now(clock) + timedelta(minutes=5)
    assert storage.consume_once("assertion:c:jti", until)
    assert storage.consume_once("assertion:c:jti ", until)
    assert storage.consume_once("assertion:c:JTI", until)
    storage.add_permission(permission(clock, "devices:read"))
    storage.add_permission(permission(clock, "devices:read "))
    assert [p.name for p in storage.list_permissions()] == ["devices:read", "devices:read "]
    reg = registration(clock, client_id="client-x")
    storage.create_registration(reg)
    storage.create_registration(registration(clock, client_id="client-x "))
    assert storage.get_registration("client-x") == reg


def test_name_filter_folds_case_not_accents(storage: Storage, clock: FrozenClock) -> None:
    for name in ["Bäckup", "BACKUP", "backup"]:
        storage.create_registration(registration(clock, name=name))
    assert sorted(r.name for r in storage.list_registrations("site-1", name_contains="back").items) == [
        "BACKUP",
        "backup",
    ]
    assert [r.name for r in storage.list_registrations("site-1", name_contains="BÄCK").items] == ["Bäckup"]


def test_same_instant_orders_by_client_id(storage: Storage, clock: FrozenClock) -> None:
    regs = [registration(clock, name=f"S{i}") for i in range(4)]
    for reg in regs:
        storage.create_registration(reg)
    listed = storage.list_registrations("site-1").items
    assert [r.client_id for r in listed] == sorted(r.client_id for r in regs)


def test_list_registrations_filters_name(storage: Storage, clock: FrozenClock) -> None:
    for name in ["Backup script", "Nightly BACKUP", "Reporting", "100% done", "under_score"]:
        storage.create_registration(registration(clock, name=name))
    assert sorted(r.name for r in storage.list_registrations("site-1", name_contains="backup").items) == [
        "Backup script",
        "Nightly BACKUP",
    ]
    assert storage.list_registrations("site-1", name_contains="backup").total == 2
    assert [r.name for r in storage.list_registrations("site-1", name_contains="%").items] == ["100% done"]
    assert [r.name for r in storage.list_registrations("site-1", name_contains="_").items] == ["under_score"]
    assert storage.list_registrations("site-2", name_contains="backup").total == 0


def test_save_is_compare_and_set(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    edited = bump(reg, name="Renamed", enabled=False, updated_at=now(clock) + timedelta(seconds=5))
    assert storage.save_registration(edited, expected_version=1)
    assert storage.get_registration(reg.client_id) == edited
    stale = bump(reg, name="Stale")
    assert not storage.save_registration(stale, expected_version=1)
    assert storage.get_registration(reg.client_id) == edited


def test_save_replaces_credentials(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock, secrets=(secret(clock), secret(clock)), certificates=(certificate(clock),))
    storage.create_registration(reg)
    new_secret = secret(clock)
    changed = bump(reg, secrets=(reg.secrets[1], new_secret), certificates=())
    assert storage.save_registration(changed, expected_version=1)
    assert storage.get_registration(reg.client_id) == changed
    again = bump(changed, certificates=(certificate(clock), certificate(clock)))
    assert storage.save_registration(again, expected_version=2)
    assert storage.get_registration(reg.client_id) == again


def test_save_missing_registration(storage: Storage, clock: FrozenClock) -> None:
    with pytest.raises(RegistrationNotFound):
        storage.save_registration(bump(registration(clock)), expected_version=1)


def test_save_with_unknown_scope_changes_nothing(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    with pytest.raises(UnknownPermission):
        storage.save_registration(bump(reg, scopes=("nope:read",)), expected_version=1)
    assert storage.get_registration(reg.client_id) == reg


def test_concurrent_saves_exactly_one_wins(storage: Storage, clock: FrozenClock) -> None:
    """16 threads rotate the same registration's secret from the same read: one wins, one secret."""
    reg = registration(clock)
    storage.create_registration(reg)
    replacements = [secret(clock) for _ in range(16)]

    results = hammer(
        16, lambda i: storage.save_registration(bump(reg, secrets=(replacements[i],)), expected_version=1)
    )
    assert results.count(True) == 1
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and stored.version == 2
    assert stored.secrets == (replacements[results.index(True)],)


def test_record_use_moves_forward_only(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    later = now(clock) + timedelta(minutes=5)
    storage.record_use(reg.client_id, later)
    storage.record_use(reg.client_id, later - timedelta(minutes=1))
    stored = storage.get_registration(reg.client_id)
    assert stored is not None
    assert stored.last_used_at == later
    assert stored.version == reg.version
    storage.record_use(new_client_id(), later)  # ignored


def test_save_keeps_last_used(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    used = now(clock) + timedelta(seconds=3)
    storage.record_use(reg.client_id, used)
    assert storage.save_registration(bump(reg, name="Renamed"), expected_version=1)
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and stored.last_used_at == used and stored.name == "Renamed"


def test_delete_registrations(storage: Storage, clock: FrozenClock) -> None:
    regs = [registration(clock, certificates=(certificate(clock),)) for _ in range(3)]
    for reg in regs:
        storage.create_registration(reg)
    missing = new_client_id()
    deleted = storage.delete_registrations([regs[2].client_id, missing, regs[0].client_id])
    assert deleted == [regs[2].client_id, regs[0].client_id]
    assert storage.get_registration(regs[0].client_id) is None
    assert storage.get_registration(regs[1].client_id) == regs[1]
    assert [r.client_id for r in storage.list_registrations("site-1").items] == [regs[1].client_id]
    assert storage.delete_registrations([]) == []
    assert storage.delete_registrations([regs[1].client_id, regs[1].client_id]) == [regs[1].client_id]
    storage.create_registration(regs[0])  # the id can be used again
    assert storage.get_registration(regs[0].client_id) == regs[0]


# -------------------------------------------------------------------- one-time keys


def test_consume_once(storage: Storage, clock: FrozenClock) -> None:
    until = now(clock) + timedelta(minutes=5)
    assert storage.consume_once("client-1:jti-1", until)
    assert not storage.consume_once("client-1:jti-1", until)
    assert storage.consume_once("client-1:jti-2", until)
    assert storage.consume_once("client-2:jti-1", until)


def test_consume_once_long_keys(storage: Storage, clock: FrozenClock) -> None:
    until = now(clock) + timedelta(minutes=5)
    long_key = "client:" + "j" * 300
    assert storage.consume_once(long_key, until)
    assert not storage.consume_once(long_key, until)
    assert storage.consume_once(long_key[:-1] + "k", until)


def test_consume_once_again_after_expiry(storage: Storage, clock: FrozenClock) -> None:
    until = now(clock) + timedelta(seconds=2)
    assert storage.consume_once("k", until)
    clock.advance(1)
    assert not storage.consume_once("k", until)
    clock.advance(1.5)
    assert storage.consume_once("k", now(clock) + timedelta(seconds=2))


def test_consume_once_concurrently(storage: Storage, clock: FrozenClock) -> None:
    """16 threads present the same jti: exactly one wins."""
    until = now(clock) + timedelta(minutes=5)
    for key in ("jti-0", "jti-1", "jti-2"):
        results = hammer(16, lambda _i, key=key: storage.consume_once(key, until))  # type: ignore[misc]
        assert results.count(True) == 1


# -------------------------------------------------------------------- revocations


def revocation(
    clock: FrozenClock, subject: str = "client-1", ttl: float = 3600, generation: int = 2
) -> Revocation:
    return Revocation(
        RevocationKind.REGISTRATION, subject, now(clock) + timedelta(seconds=ttl), generation=generation
    )


def test_revocations_in_order(storage: Storage, clock: FrozenClock) -> None:
    assert storage.revocations_after(0) == []
    seqs = [storage.add_revocation(revocation(clock, f"c{i}")) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5 and seqs[0] > 0
    entries = storage.revocations_after(0)
    assert [e.subject for e in entries] == [f"c{i}" for i in range(5)]
    assert [e.seq for e in entries] == seqs
    assert entries[0] == dataclasses.replace(revocation(clock, "c0"), seq=seqs[0])
    assert [e.subject for e in storage.revocations_after(seqs[2])] == ["c3", "c4"]


def test_revocation_kinds_round_trip(storage: Storage, clock: FrozenClock) -> None:
    until = now(clock) + timedelta(hours=1)
    written = [
        Revocation(RevocationKind.REGISTRATION, "client-a", until, generation=7),
        Revocation(RevocationKind.CREDENTIAL, "secret-id", until),
        Revocation(
            RevocationKind.ACCESS_TOKEN, "jti-1", until, client_id="client-a", issued_at=1_790_000_000
        ),
        Revocation(RevocationKind.CLIENT_TOKENS, "client-a", until, issued_at=1_790_000_123),
        Revocation(RevocationKind.SIGNING_KEY, "kid-1", until),
    ]
    seqs = [storage.add_revocation(entry) for entry in written]
    assert {entry.kind for entry in written} == set(RevocationKind)
    assert storage.revocations_after(0) == [
        dataclasses.replace(entry, seq=seq) for entry, seq in zip(written, seqs, strict=True)
    ]


def test_one_entry_per_kind_and_subject(storage: Storage, clock: FrozenClock) -> None:
    """A second entry for the same subject merges into the first and moves to the end of the log."""
    first = storage.add_revocation(revocation(clock, "c1", ttl=100, generation=5))
    storage.add_revocation(revocation(clock, "c2"))
    third = storage.add_revocation(revocation(clock, "c1", ttl=50, generation=3))
    entries = storage.revocations_after(0)
    assert [(e.subject, e.seq) for e in entries] == [("c2", first + 1), ("c1", third)]
    assert entries[-1] == dataclasses.replace(revocation(clock, "c1", ttl=100, generation=5), seq=third)
    storage.add_revocation(Revocation(RevocationKind.CREDENTIAL, "c1", now(clock) + timedelta(hours=1)))
    assert len(storage.revocations_after(0)) == 3  # another kind, another entry
    token = Revocation(RevocationKind.ACCESS_TOKEN, "jti", now(clock) + timedelta(hours=1), client_id="c9")
    storage.add_revocation(token)
    storage.add_revocation(dataclasses.replace(token, client_id=None, issued_at=42))
    merged = storage.revocations_after(0)[-1]
    assert (merged.client_id, merged.issued_at) == ("c9", 42)


def test_revocations_expire(storage: Storage, clock: FrozenClock) -> None:
    storage.add_revocation(revocation(clock, "short", ttl=10))
    storage.add_revocation(revocation(clock, "long", ttl=100))
    clock.advance(11)
    assert [e.subject for e in storage.revocations_after(0)] == ["long"]
    clock.advance(100)
    assert storage.revocations_after(0) == []
    storage.add_revocation(revocation(clock, "short", ttl=10))  # an expired subject can come back
    assert [e.subject for e in storage.revocations_after(0)] == ["short"]


def test_revocation_seqs_concurrently(storage: Storage, clock: FrozenClock) -> None:
    seqs = hammer(16, lambda i: storage.add_revocation(revocation(clock, f"c{i}")))
    assert len(set(seqs)) == 16
    assert [e.seq for e in storage.revocations_after(0)] == sorted(seqs)


def test_merging_concurrently(storage: Storage, clock: FrozenClock) -> None:
    """16 threads revoke the same subject with different generations: one entry, the highest."""
    seqs = hammer(16, lambda i: storage.add_revocation(revocation(clock, "c1", generation=i + 1)))
    entries = storage.revocations_after(0)
    assert len(entries) == 1 and entries[0].generation == 16 and entries[0].seq == max(seqs)


def test_revocation_head(storage: Storage, clock: FrozenClock) -> None:
    head = storage.revocation_head()
    assert head.epoch and head.seq == 0 and head.max_token_age == 0
    seq = storage.add_revocation(revocation(clock))
    assert storage.revocation_head() == dataclasses.replace(head, seq=seq)
    assert storage.raise_max_token_age(3630) == 3630
    assert storage.raise_max_token_age(600) == 3630  # only ever raised
    assert storage.revocation_head().max_token_age == 3630
    results = hammer(16, lambda i: storage.raise_max_token_age(4000 + i))
    assert storage.revocation_head().max_token_age == 4015 and max(results) == 4015


def test_ping(storage: Storage) -> None:
    storage.ping()


# -------------------------------------------------------------------- signing keys


def signing_key(clock: FrozenClock, kid: str | None = None) -> SigningKey:
    return SigningKey(
        kid=kid or new_id(),
        alg="ES256",
        public_jwk='{"kty":"EC","crv":"P-256","x":"x","y":"y"}',
        private_key=bytes(range(256)) * 2,
        encrypted=True,
        created_at=now(clock),
        activates_at=now(clock) + timedelta(hours=1),
    )


def test_signing_keys(storage: Storage, clock: FrozenClock) -> None:
    first = signing_key(clock, "k1")
    clock.advance(1)
    second = signing_key(clock, "k0")
    storage.add_signing_key(first)
    storage.add_signing_key(second)
    with pytest.raises(AlreadyExists):
        storage.add_signing_key(first)
    assert storage.list_signing_keys() == [first, second]
    retired = dataclasses.replace(first, retires_at=now(clock), expires_at=now(clock) + timedelta(hours=2))
    storage.save_signing_key(retired)
    assert storage.list_signing_keys() == [retired, second]
    storage.delete_signing_key("k1")
    storage.delete_signing_key("k1")
    assert storage.list_signing_keys() == [second]
    with pytest.raises(NotFound):
        storage.save_signing_key(retired)


# -------------------------------------------------------------------- refresh tokens


def refresh_token(clock: FrozenClock, user: str = "alice", **changes: object) -> RefreshToken:
    base = RefreshToken(
        id=new_id(),
        user=user,
        scopes=("devices:read",),
        hint="ear_abc",
        token_hash="$argon2id$hash",
        created_at=now(clock),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_refresh_tokens(storage: Storage, clock: FrozenClock) -> None:
    first = refresh_token(clock, tenant="site-1")
    clock.advance(1)
    second = refresh_token(clock, scopes=())
    storage.add_refresh_token(first)
    storage.add_refresh_token(second)
    storage.add_refresh_token(refresh_token(clock, user="bob"))
    with pytest.raises(AlreadyExists):
        storage.add_refresh_token(first)
    assert storage.get_refresh_token(first.id) == first
    assert storage.get_refresh_token(new_id()) is None
    assert storage.list_refresh_tokens("alice") == [first, second]
    revoked = dataclasses.replace(first, revoked_at=now(clock), last_used_at=now(clock))
    storage.save_refresh_token(revoked)
    assert storage.list_refresh_tokens("alice") == [revoked, second]
    with pytest.raises(RefreshTokenNotFound):
        storage.save_refresh_token(refresh_token(clock))
    assert storage.list_refresh_tokens("carol") == []


def test_refresh_token_use_never_undoes_a_revocation(storage: Storage, clock: FrozenClock) -> None:
    token = refresh_token(clock)
    storage.add_refresh_token(token)
    used = now(clock) + timedelta(seconds=5)
    storage.record_refresh_token_use(token.id, used)
    storage.record_refresh_token_use(token.id, used - timedelta(seconds=1))
    assert storage.get_refresh_token(token.id) == dataclasses.replace(token, last_used_at=used)
    revoked = dataclasses.replace(token, revoked_at=used, last_used_at=used)
    storage.save_refresh_token(revoked)
    later = used + timedelta(seconds=5)
    storage.record_refresh_token_use(token.id, later)
    assert storage.get_refresh_token(token.id) == dataclasses.replace(revoked, last_used_at=later)
    storage.record_refresh_token_use(new_id(), later)  # ignored


def test_refresh_token_use_keeps_the_document_intact(storage: Storage, clock: FrozenClock) -> None:
    token = refresh_token(clock, scopes=(), user='d/é"q')
    storage.add_refresh_token(token)
    used = now(clock) + timedelta(seconds=5)
    storage.record_refresh_token_use(token.id, used)
    assert storage.get_refresh_token(token.id) == dataclasses.replace(token, last_used_at=used)


def test_list_registrations_holding_a_permission(storage: Storage, clock: FrozenClock) -> None:
    storage.add_permission(permission(clock, "devices:read"))
    storage.add_permission(permission(clock, "users:read"))
    holders = []
    for i in range(4):
        held = ("devices:read",) if i % 2 == 0 else ("users:read",)
        reg = registration(clock, tenant=f"site-{i % 2}", scopes=held)
        storage.create_registration(reg)
        if i % 2 == 0:
            holders.append(reg)
        clock.advance(1)
    page = storage.list_registrations(None, holding="devices:read", limit=1)
    assert page.total == 2 and [r.client_id for r in page.items] == [holders[0].client_id]
    assert [r.client_id for r in storage.list_registrations("site-0", holding="devices:read").items] == [
        r.client_id for r in holders
    ]
    assert storage.list_registrations("site-1", holding="devices:read").total == 0


# -------------------------------------------------------------------- listing: order, tenants, expiry
#
# The order is written out here, independently of embedauth.storage.base.registration_sort_key, so
# that a backend and the reference cannot agree on a mistake.

SORTS: tuple[RegistrationSort, ...] = ("created_at", "name", "last_used_at", "expires_at", "enabled")
_NEVER = datetime.max.replace(tzinfo=UTC)
_NOT_YET = datetime.min.replace(tzinfo=UTC)


def expected_order(
    regs: Sequence[Registration], sort: RegistrationSort, descending: bool = False
) -> list[str]:
    """The contract's order of ``regs``: (key, created_at, client_id), all reversed when descending."""

    def key(r: Registration) -> tuple[object, ...]:
        if sort == "name":
            head: tuple[object, ...] = (r.name.lower(),)
        elif sort == "last_used_at":  # never used before every time
            head = (0, _NOT_YET) if r.last_used_at is None else (1, r.last_used_at)
        elif sort == "expires_at":  # never expiring after every time
            head = (1, _NEVER) if r.expires_at is None else (0, r.expires_at)
        elif sort == "enabled":
            head = (int(r.enabled),)
        else:
            head = ()
        return (*head, r.created_at, r.client_id)

    return [r.client_id for r in sorted(regs, key=key, reverse=descending)]


def listed(page: Page[Registration]) -> list[str]:
    return [r.client_id for r in page.items]


def grid(storage: Storage, clock: FrozenClock, tenant: str = "site-1") -> list[Registration]:
    """Registrations with ties on every key (some created at one instant), mixed-case names, never
    used ones, disabled ones, and each way of expiring; as stored (last use recorded)."""
    start = now(clock)
    at = [start, start + timedelta(seconds=1), start + timedelta(seconds=2)]

    def secret_until(days: int) -> SecretCredential:
        return dataclasses.replace(secret(clock), expires_at=start + timedelta(days=days))

    specs: list[tuple[str, int, dict[str, object]]] = [
        ("backup", 0, {"secrets": (secret_until(30),)}),
        ("Backup", 0, {"secrets": (secret_until(30),), "enabled": False}),
        ("BACKUP", 1, {"secrets": (secret_until(10), secret_until(90)), "registration_expires_at": None}),
        ("alpha", 1, {"secrets": (), "certificates": ()}),  # no credential: expired at its creation
        ("Zeta", 0, {"registration_expires_at": start + timedelta(days=5)}),  # its own expiry first
        ("a b", 2, {"secrets": (), "certificates": (certificate(clock),), "registration_expires_at": None}),
        ("a-c", 2, {"secrets": (secret_until(90),), "enabled": False}),
        ("ab", 0, {"secrets": (secret_until(10),)}),
        ("Émile", 1, {"secrets": (secret_until(10),), "certificates": (certificate(clock),)}),
    ]
    made = []
    for name, instant, changes in specs:
        reg = registration(clock, tenant=tenant, name=name, created_at=at[instant], **changes)
        storage.create_registration(reg)
        made.append(reg)
    uses = {1: start + timedelta(minutes=5), 2: start + timedelta(minutes=1), 4: start + timedelta(minutes=5)}
    for i, used in uses.items():  # two used at one instant; the others never
        storage.record_use(made[i].client_id, used)
        made[i] = dataclasses.replace(made[i], last_used_at=used)
    return made


def test_the_grid_has_ties_and_nones(storage: Storage, clock: FrozenClock) -> None:
    """The data the order tests use exercise what they claim (a guard on the fixture itself)."""
    regs = grid(storage, clock)
    assert len({r.created_at for r in regs}) < len(regs)
    assert len({r.name.lower() for r in regs}) < len(regs)
    assert any(r.last_used_at is None for r in regs) and any(r.last_used_at for r in regs)
    used = [r.last_used_at for r in regs if r.last_used_at]
    assert len(set(used)) < len(used)
    ends = [r.expires_at for r in regs]
    assert len(set(ends)) < len(ends) and regs[3].expires_at == regs[3].created_at
    assert {r.enabled for r in regs} == {True, False}


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("sort", SORTS)
def test_list_registrations_sorted(
    storage: Storage, clock: FrozenClock, sort: RegistrationSort, descending: bool
) -> None:
    regs = grid(storage, clock)
    storage.create_registration(registration(clock, tenant="site-2", name="AAA"))  # another tenant's
    page = storage.list_registrations("site-1", sort=sort, descending=descending, limit=100)
    assert page.total == len(regs)
    assert listed(page) == expected_order(regs, sort, descending)
    assert list(page.items) == sorted(regs, key=lambda r: listed(page).index(r.client_id))  # whole models


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("sort", SORTS)
def test_sorted_pages_are_slices_of_one_order(
    storage: Storage, clock: FrozenClock, sort: RegistrationSort, descending: bool
) -> None:
    regs = grid(storage, clock)
    order = expected_order(regs, sort, descending)
    for limit in (1, 2, 4):
        pages = [
            storage.list_registrations("site-1", sort=sort, descending=descending, offset=offset, limit=limit)
            for offset in range(0, len(regs) + limit, limit)
        ]
        assert {p.total for p in pages} == {len(regs)}
        assert [cid for p in pages for cid in listed(p)] == order
        assert pages[-1].items == []
    middle = storage.list_registrations("site-1", sort=sort, descending=descending, offset=3, limit=3)
    assert (listed(middle), middle.offset, middle.limit) == (order[3:6], 3, 3)


def test_sort_by_name_folds_case_and_compares_code_points(storage: Storage, clock: FrozenClock) -> None:
    """Written out: ties of one folded name by creation, then client ID; "a b" < "a-c" < "ab" (by code
    point, not by a locale that ignores spaces and dashes); "Émile" after every ASCII letter."""
    regs = grid(storage, clock)
    by_name = {r.client_id: r.name for r in regs}
    names = [by_name[cid] for cid in listed(storage.list_registrations("site-1", sort="name"))]
    tied = sorted(regs[:2], key=lambda r: r.client_id)  # "backup" and "Backup": one instant
    assert names == ["a b", "a-c", "ab", "alpha", *(r.name for r in tied), "BACKUP", "Zeta", "Émile"]
    backwards = [
        by_name[cid] for cid in listed(storage.list_registrations(None, sort="name", descending=True))
    ]
    assert backwards == names[::-1]


def test_sort_by_last_use_puts_never_used_first(storage: Storage, clock: FrozenClock) -> None:
    regs = grid(storage, clock)
    never = {r.client_id for r in regs if r.last_used_at is None}
    ascending = listed(storage.list_registrations("site-1", sort="last_used_at"))
    assert set(ascending[: len(never)]) == never
    assert ascending[len(never) :] == [regs[2].client_id, *sorted([regs[1].client_id, regs[4].client_id])]
    descending = listed(storage.list_registrations("site-1", sort="last_used_at", descending=True))
    assert descending == ascending[::-1] and set(descending[-len(never) :]) == never


def test_sort_by_enabled_puts_disabled_first(storage: Storage, clock: FrozenClock) -> None:
    regs = grid(storage, clock)
    disabled = [regs[1].client_id, regs[6].client_id]  # created in that order
    assert listed(storage.list_registrations("site-1", sort="enabled", limit=2)) == disabled
    assert (
        listed(storage.list_registrations("site-1", sort="enabled", descending=True))[-2:] == disabled[::-1]
    )


def test_sort_by_effective_expiry(storage: Storage, clock: FrozenClock) -> None:
    """Written out: no credential first (its creation), an own expiry before the credentials', then
    the last credential's end; ties by creation, then client ID."""
    regs = grid(storage, clock)
    ids = [r.client_id for r in regs]
    assert (
        listed(storage.list_registrations("site-1", sort="expires_at"))
        == [
            ids[3],  # "alpha": no credential, so its creation (one second in)
            ids[4],  # "Zeta": its own expiry, 5 days
            ids[7],  # "ab": its secret, 10 days
            *sorted(ids[0:2]),  # "backup", "Backup": 30 days, created at one instant
            *sorted([ids[2], ids[8]]),  # 90 days (a later secret; a certificate), created one second in
            *sorted(ids[5:7]),  # 90 days (a certificate; a secret), created two seconds in
        ]
    )


def test_list_several_tenants(storage: Storage, clock: FrozenClock) -> None:
    made: dict[str, list[Registration]] = {"site-1": [], "site-2": [], "site-3": []}
    for i in range(9):
        tenant = f"site-{i % 3 + 1}"
        reg = registration(clock, tenant=tenant, name=f"Script {8 - i}", created_at=now(clock))
        storage.create_registration(reg)
        made[tenant].append(reg)
        clock.advance(1)
    wanted = made["site-1"] + made["site-3"]
    for tenants in (
        ["site-1", "site-3"],
        ("site-3", "site-1"),
        {"site-1", "site-3"},
        ["site-1", "site-3", "site-1"],
    ):
        page = storage.list_registrations(tenants, limit=100)
        assert page.total == 6 and listed(page) == expected_order(wanted, "created_at")
    named = storage.list_registrations(frozenset({"site-1", "site-3"}), sort="name", offset=1, limit=2)
    assert (named.total, listed(named)) == (6, expected_order(wanted, "name")[1:3])
    assert listed(storage.list_registrations(["site-2"])) == [r.client_id for r in made["site-2"]]
    assert listed(storage.list_registrations(["site-2", "nobody"])) == [r.client_id for r in made["site-2"]]
    assert storage.list_registrations("site-2").total == 3  # one string is one tenant, not its letters
    assert storage.list_registrations(["site-1", "site-2"], name_contains="script 8").total == 1
    assert storage.list_registrations(None).total == 9


@pytest.mark.parametrize("nobody", [[], (), set(), frozenset()], ids=["list", "tuple", "set", "frozenset"])
def test_an_empty_collection_of_tenants_matches_nothing(
    storage: Storage, clock: FrozenClock, nobody: Collection[str]
) -> None:
    storage.create_registration(registration(clock))
    for sort in SORTS:
        page = storage.list_registrations(nobody, sort=sort)
        assert (page.total, page.items) == (0, [])
    assert storage.list_registrations(None).total == 1


def test_list_expiring_before(storage: Storage, clock: FrozenClock) -> None:
    regs = grid(storage, clock)
    start = now(clock)
    other = registration(clock, tenant="site-2", secrets=(secret(clock, days=1),))
    storage.create_registration(other)

    def expiring(
        before: datetime,
        tenant: str | Collection[str] | None = "site-1",
        *,
        name_contains: str | None = None,
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> Page[Registration]:
        return storage.list_registrations(
            tenant,
            name_contains=name_contains,
            expires_before=before,
            sort="expires_at",
            descending=descending,
            offset=offset,
            limit=limit,
        )

    created = start + timedelta(seconds=1)  # "alpha", without credentials, expired then
    assert listed(expiring(created)) == []  # strictly before
    assert listed(expiring(created + timedelta(milliseconds=1))) == [regs[3].client_id]
    soon = start + timedelta(days=10)  # "ab" ends at that very moment: not before it
    assert expiring(soon).total == 2 and set(listed(expiring(soon))) == {regs[3].client_id, regs[4].client_id}
    month = start + timedelta(days=31)
    within = [r for r in regs if r.expires_at is not None and r.expires_at < month]
    assert len(within) == 5
    page = expiring(month, descending=True, offset=1, limit=3)
    assert page.total == 5 and listed(page) == expected_order(within, "expires_at", True)[1:4]
    assert expiring(month, tenant=None).total == 6  # the other tenant's too
    assert expiring(month, tenant=["site-2"]).total == 1
    assert listed(expiring(month, name_contains="BACK")) == expected_order(regs[:2], "expires_at")
    assert expiring(start + timedelta(days=3650)).total == len(regs)  # every one of these ends


def test_a_credential_change_moves_a_registration_in_expiry_order(
    storage: Storage, clock: FrozenClock
) -> None:
    start = now(clock)
    soon = registration(clock, registration_expires_at=None, secrets=(secret(clock, days=30),))
    late = registration(clock, registration_expires_at=None, secrets=(secret(clock, days=60),))
    for reg in (soon, late):
        storage.create_registration(reg)

    def by_expiry(descending: bool = False) -> list[str]:
        return listed(storage.list_registrations("site-1", sort="expires_at", descending=descending))

    assert by_expiry() == [soon.client_id, late.client_id]
    renewed = bump(soon, secrets=(*soon.secrets, secret(clock, days=90)))  # a rotation's new secret
    assert storage.save_registration(renewed, expected_version=1)
    assert by_expiry() == [late.client_id, soon.client_id]
    assert listed(storage.list_registrations("site-1", expires_before=start + timedelta(days=61))) == [
        late.client_id
    ]
    longer = dataclasses.replace(certificate(clock), not_after=start + timedelta(days=120))
    certified = bump(late, secrets=(), certificates=(longer,))  # a certificate instead of the secret
    assert storage.save_registration(certified, expected_version=1)
    assert by_expiry() == [soon.client_id, late.client_id]
    capped = bump(certified, registration_expires_at=start + timedelta(days=80))  # its own expiry first
    assert storage.save_registration(capped, expected_version=2)
    assert by_expiry() == [late.client_id, soon.client_id]
    bare = bump(renewed, secrets=())  # no credential left: it stopped working when it was created
    assert storage.save_registration(bare, expected_version=2)
    assert by_expiry() == [soon.client_id, late.client_id]
    assert listed(storage.list_registrations("site-1", expires_before=start + timedelta(seconds=1))) == [
        soon.client_id
    ]
    storage.record_use(soon.client_id, start + timedelta(days=200))  # a use moves nothing
    assert by_expiry(descending=True) == [late.client_id, soon.client_id]


def test_an_unknown_sort_is_refused(storage: Storage, clock: FrozenClock) -> None:
    storage.create_registration(registration(clock))
    with pytest.raises(ValueError, match="updated_at"):
        storage.list_registrations("site-1", sort="updated_at")  # type: ignore[arg-type]


# -------------------------------------------------------------------- last use per credential


def test_record_use_moves_each_credential_forward_only(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock, certificates=(certificate(clock),))
    storage.create_registration(reg)
    secret_id, certificate_id = reg.secrets[0].id, reg.certificates[0].id
    early, late = now(clock) + timedelta(seconds=1), now(clock) + timedelta(seconds=2)
    storage.record_use(reg.client_id, late, credential_id=secret_id)
    storage.record_use(reg.client_id, early, credential_id=secret_id)  # older: ignored
    storage.record_use(reg.client_id, early, credential_id=certificate_id)
    storage.record_use(reg.client_id, late, credential_id="not-a-credential")  # ignored
    storage.record_use("no-such-client", late, credential_id=secret_id)  # ignored
    stored = storage.get_registration(reg.client_id)
    assert stored is not None
    assert stored.last_used_at == late
    assert (stored.secrets[0].last_used_at, stored.certificates[0].last_used_at) == (late, early)
    assert stored.version == reg.version


def test_save_keeps_each_credentials_last_use(storage: Storage, clock: FrozenClock) -> None:
    """A save with a stale model keeps the stored uses; a credential dropped takes its use along."""
    reg = registration(clock, secrets=(secret(clock), secret(clock)))
    storage.create_registration(reg)
    used = now(clock) + timedelta(seconds=5)
    for s in reg.secrets:
        storage.record_use(reg.client_id, used, credential_id=s.id)
    kept, dropped = reg.secrets
    assert storage.save_registration(bump(reg, name="Renamed", secrets=(kept,)), expected_version=1)
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and [s.last_used_at for s in stored.secrets] == [used]
    # Put back, the dropped one starts unused: its last use went with it.
    assert storage.save_registration(bump(stored, secrets=(kept, dropped)), expected_version=2)
    again = storage.get_registration(reg.client_id)
    assert again is not None and [s.last_used_at for s in again.secrets] == [used, None]


def test_a_replaced_secret_keeps_its_mark(storage: Storage, clock: FrozenClock) -> None:
    replaced = dataclasses.replace(secret(clock), replaced_at=now(clock))
    reg = registration(clock, secrets=(replaced, secret(clock)))
    storage.create_registration(reg)
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and [s.replaced_at for s in stored.secrets] == [now(clock), None]


def test_uses_racing_saves_are_never_lost(storage: Storage, clock: FrozenClock) -> None:
    reg = registration(clock)
    storage.create_registration(reg)
    secret_id = reg.secrets[0].id
    moments = [now(clock) + timedelta(milliseconds=i) for i in range(1, 21)]

    def work(i: int) -> None:
        if i % 2:
            storage.record_use(reg.client_id, moments[i], credential_id=secret_id)
        else:
            current = storage.get_registration(reg.client_id)
            assert current is not None
            storage.save_registration(bump(current, name=f"n{i}"), expected_version=current.version)

    hammer(20, work)
    storage.record_use(reg.client_id, moments[0], credential_id=secret_id)  # older than all: no change
    stored = storage.get_registration(reg.client_id)
    assert stored is not None and stored.secrets[0].last_used_at == moments[19]


# -------------------------------------------------------------------- the audit trail


def audit_record(clock: FrozenClock, **changes: object) -> AuditRecord:
    base = AuditRecord(
        id=secrets.token_hex(16),
        at=now(clock),
        actor="alice",
        action="registration.create",
        tenant="site-1",
        client_id=new_client_id(),
        target=None,
        source="192.0.2.1",
        outcome="success",
        reason=None,
        detail={"scopes": ["devices:read"], "count": 2, "ok": True, "none": None, "é": "ü"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_audit_records_round_trip_newest_first(storage: Storage, clock: FrozenClock) -> None:
    first = audit_record(clock)
    clock.advance(1)
    second = audit_record(
        clock, tenant=None, client_id=None, actor="cli:root", reason="why", outcome="refused"
    )
    clock.advance(1)
    tie = [audit_record(clock, id=f"{'f' if i else '0'}" * 32) for i in range(2)]  # same time: by id
    storage.add_audit_records([first, second, *tie])
    page = storage.list_audit_records(None)
    assert list(page.items) == [tie[1], tie[0], second, first] and page.total == 4
    assert page.items[2] == second  # every field, the detail included


def test_audit_records_by_tenant_client_and_since(storage: Storage, clock: FrozenClock) -> None:
    client = new_client_id()
    a = audit_record(clock, tenant="site-1", client_id=client)
    clock.advance(1)
    b = audit_record(clock, tenant="site-2")
    clock.advance(1)
    c = audit_record(clock, tenant="site-1")
    d = audit_record(clock, tenant=None, client_id=client)  # e.g. a refusal before the client was known
    storage.add_audit_records([a, b, c, d])

    def listed(tenant: str | Collection[str] | None, **query: object) -> list[AuditRecord]:
        return list(storage.list_audit_records(tenant, **query).items)  # type: ignore[arg-type]

    assert set(listed("site-1")) == {a, c}
    assert set(listed(["site-1", "site-2"])) == {a, b, c}
    assert listed([]) == []
    assert set(listed(None, client_id=client)) == {a, d}
    assert listed("site-1", client_id=client) == [a]
    assert listed("site-2", client_id=client) == []  # another tenant's client: nothing
    # since is inclusive, to the millisecond: c's time is in, a millisecond later is not
    assert set(listed(None, since=c.at)) == {c, d}
    assert listed(None, since=c.at + timedelta(milliseconds=1)) == []
    assert set(listed(["site-1", "site-2"], since=b.at - timedelta(milliseconds=1))) == {b, c}


def test_audit_pages_are_consecutive_slices(storage: Storage, clock: FrozenClock) -> None:
    records = []
    for i in range(7):
        clock.advance(0.001 * (i % 2))  # some share a time
        records.append(audit_record(clock, tenant="site-1" if i % 3 else "site-2"))
    storage.add_audit_records(records)
    expected = sorted(records, key=lambda r: (r.at, r.id), reverse=True)
    for tenant in (None, ["site-1", "site-2"]):
        pages = [storage.list_audit_records(tenant, offset=o, limit=3) for o in (0, 3, 6)]
        assert [r for p in pages for r in p.items] == expected
        assert {p.total for p in pages} == {7}


def test_audit_pruned_by_age_then_by_count(storage: Storage, clock: FrozenClock) -> None:
    old = audit_record(clock, tenant="site-1")
    clock.advance(10)
    rest = []
    for _ in range(5):
        clock.advance(0.001)
        rest.append(audit_record(clock, client_id=old.client_id))
    storage.add_audit_records([old, *rest])
    assert storage.prune_audit_records(before=old.at, keep=100) == 0  # strictly older only
    assert storage.prune_audit_records(before=old.at + timedelta(milliseconds=1), keep=100) == 1
    assert storage.prune_audit_records(before=old.at, keep=3) == 2  # the newest 3 stay
    assert list(storage.list_audit_records(None).items) == rest[:1:-1]
    assert storage.list_audit_records("site-1").total == 3  # the indexes agree
    assert storage.list_audit_records(None, client_id=old.client_id).total == 3
    assert storage.prune_audit_records(before=old.at, keep=0) == 3
    assert storage.list_audit_records("site-1", client_id=old.client_id).total == 0


# -------------------------------------------------------------------- idle refresh tokens


def test_idle_refresh_tokens(storage: Storage, clock: FrozenClock) -> None:
    never_used = refresh_token(clock)
    clock.advance(1)
    used = refresh_token(clock)
    revoked = refresh_token(clock, revoked_at=now(clock))
    for token in (never_used, used, revoked):
        storage.add_refresh_token(token)
    storage.record_refresh_token_use(used.id, now(clock) + timedelta(seconds=10))
    cut = never_used.created_at
    assert storage.idle_refresh_tokens(cut) == []  # strictly before
    assert [t.id for t in storage.idle_refresh_tokens(cut + timedelta(milliseconds=1))] == [never_used.id]
    later = now(clock) + timedelta(seconds=10, milliseconds=1)
    assert [t.id for t in storage.idle_refresh_tokens(later)] == [never_used.id, used.id]
    assert [t.id for t in storage.idle_refresh_tokens(later, limit=1)] == [never_used.id]
