"""A store written by embedauth 0.1 (layout version 1) opens, migrated, with its data and its revocations;
one written at layout version 2 gains the stored effective expiry of version 3, and one at version 4
the last uses per credential and the audit trail of version 5."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Connection, create_engine, inspect, text

from embedauth.clock import FrozenClock, utcnow
from embedauth.models import RevocationKind
from embedauth.storage.base import SCHEMA_VERSION
from embedauth.storage.redis import RedisStorage
from embedauth.storage.sql import SQLStorage, schema
from embedauth.storage.sql.engine import engine_url
from embedauth.storage.sql.rows import us
from tests.services import storage_url
from tests.storage import v1_layout as v1
from tests.storage import v2_layout as v2
from tests.storage.test_contract import listed, registration, secret

US = 1_000_000
CREATED = 1_790_000_000  # seconds
SQL_BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


def _v1_rows(conn: Connection) -> None:
    """A catalog entry, a registration with a scope and a secret, four revocations, a refresh token."""
    at = CREATED * US
    conn.execute(
        v1.PERMISSIONS.insert().values(name="devices:read", description="", access="read", created_at=at)
    )
    conn.execute(
        v1.REGISTRATIONS.insert().values(
            client_id="client-1",
            tenant="site-1",
            name="Backup",
            description="",
            customer_scope="all",
            customer_ids="[]",
            enabled=True,
            created_at=at,
            updated_at=at,
            version=3,
        )
    )
    conn.execute(v1.SCOPES.insert().values(client_id="client-1", position=0, permission="devices:read"))
    conn.execute(
        v1.SECRETS.insert().values(
            client_id="client-1",
            position=0,
            id="secret-1",
            hint="eas_abc",
            secret_hash="hash",
            created_at=at,
            expires_at=at + 86400 * US,
        )
    )
    revocations = [
        ("registration", "client-1", at, at + 3000 * US),
        ("refresh_token", "rt-1", at, at + 3600 * US),
        ("access_token", "jti-1", at, at + 600 * US),
        ("registration", "client-1", at + US, at + 3630 * US),  # a later pause of the same one
    ]
    for kind, subject, since, expires in revocations:
        conn.execute(
            v1.REVOCATIONS.insert().values(kind=kind, subject=subject, since=since, expires_at=expires)
        )
    conn.execute(
        v1.REFRESH_TOKENS.insert().values(
            id="rt-1", user="alice", scopes="[]", hint="ear_abc", token_hash="hash", created_at=at
        )
    )


def stored_expiry(url: str, client_id: str) -> int | None:
    """``registrations.expires_at`` as stored, read beside the backend."""
    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            query = text("SELECT expires_at FROM embedauth_registrations WHERE client_id = :c")
            value = conn.execute(query, {"c": client_id}).scalar_one()
    finally:
        engine.dispose()
    return None if value is None else int(value)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_version_1_sql_database_is_migrated(backend: str, tmp_path: Path) -> None:
    clock = FrozenClock(CREATED + 10)
    with storage_url(backend, tmp_path) as url:
        engine = create_engine(engine_url(url))
        with engine.begin() as conn:
            v1.create_v1(conn)
            _v1_rows(conn)
        engine.dispose()

        store = SQLStorage(url, clock=clock)
        try:
            assert store.schema_version() == SCHEMA_VERSION
            registration = store.get_registration("client-1")
            assert registration is not None
            assert (registration.generation, registration.version, registration.scopes) == (
                1,
                3,
                ("devices:read",),
            )
            entries = store.revocations_after(0)
            assert [(e.kind, e.subject, e.generation) for e in entries] == [
                (RevocationKind.REGISTRATION, "client-1", 1),  # tokens from before refused: they have no gen
                (RevocationKind.CREDENTIAL, "rt-1", 0),
                (RevocationKind.ACCESS_TOKEN, "jti-1", 0),
            ]
            assert int(entries[0].expires_at.timestamp()) == CREATED + 3630  # merged: the later expiry
            head = store.revocation_head()
            assert head.seq == 3 and head.epoch
            token = store.get_refresh_token("rt-1")
            assert token is not None and str(token.customer_scope) == "all"
            assert token.scopes == ("devices:read",)  # "every permission" became the read ones
            seq = store.add_revocation(entries[1])  # the migrated log goes on from where it stands
            assert seq == 4 and len(store.revocations_after(0)) == 3
            # Version 3's effective expiry, back-filled through the chain: its secret's end (no own expiry).
            assert registration.expires_at == registration.secrets[0].expires_at
            assert stored_expiry(url, "client-1") == (CREATED + 86400) * US
            day_after = registration.created_at + timedelta(days=1)
            assert store.list_registrations("site-1", expires_before=day_after).total == 0
            assert (
                store.list_registrations("site-1", expires_before=day_after + timedelta(milliseconds=1)).total
                == 1
            )
            if backend == "mysql":  # identifiers no longer padded
                assert store.consume_once("k", registration.created_at.replace(year=2100))
                assert store.consume_once("k ", registration.created_at.replace(year=2100))
        finally:
            store.close()
        reopened = SQLStorage(url, clock=clock)  # and a second open migrates nothing
        assert (
            reopened.schema_version() == SCHEMA_VERSION and reopened.get_registration("client-1") is not None
        )
        reopened.close()


@pytest.mark.redis
def test_a_version_1_redis_store_is_migrated(tmp_path: Path) -> None:
    clock = FrozenClock(CREATED + 10)
    with storage_url("redis", tmp_path) as url:
        store = RedisStorage(url, clock=clock)
        prefix = url.rsplit("prefix=", 1)[1]
        client = redis.Redis.from_url(url.split("?")[0])
        try:
            # What 0.1 wrote: a registration document without a generation, its tenant index but
            # no index of every registration, and a revocation entry of the "since" form.
            doc = {
                "client_id": "client-1",
                "tenant": "site-1",
                "name": "Backup",
                "description": "",
                "scopes": [],
                "customer_scope": {"kind": "all", "ids": []},
                "enabled": True,
                "created_at": "2026-09-21T13:46:40.000+00:00",
                "updated_at": "2026-09-21T13:46:40.000+00:00",
                "registration_expires_at": None,
                "last_used_at": None,
                "secrets": [],
                "certificates": [],
                "version": 1,
            }
            client.hset(f"{prefix}:{{r:client-1}}", mapping={"doc": json.dumps(doc), "version": 1})
            client.zadd(f"{prefix}:{{t:site-1}}:registrations", {"client-1": CREATED * 1000})
            client.delete(f"{prefix}:{{registrations}}")
            entry = {
                "kind": "registration",
                "subject": "client-1",
                "since": "2026-09-21T13:46:40.000+00:00",
                "expires_at": "2026-09-21T14:46:40.000+00:00",
                "seq": 1,
            }
            client.zadd(f"{prefix}:{{rev}}:log", {json.dumps(entry): 1})
            client.zadd(f"{prefix}:{{rev}}:expiry", {json.dumps(entry): (CREATED + 3600) * 1000})
            client.set(f"{prefix}:{{rev}}:seq", 1)
            client.hset(
                f"{prefix}:{{catalog}}:permissions",
                mapping={
                    "devices:read": json.dumps(
                        {
                            "name": "devices:read",
                            "description": "",
                            "access": "read",
                            "created_at": doc["created_at"],
                        }
                    ),
                    "devices:write": json.dumps(
                        {
                            "name": "devices:write",
                            "description": "",
                            "access": "write",
                            "created_at": doc["created_at"],
                        }
                    ),
                },
            )
            token = {
                "id": "rt-1",
                "user": "alice",
                "scopes": [],
                "hint": "ear_abc",
                "token_hash": "hash",
                "created_at": doc["created_at"],
                "last_used_at": None,
                "revoked_at": None,
                "tenant": None,
            }
            client.set(f"{prefix}:{{rt:rt-1}}", json.dumps(token))
            client.set(f"{prefix}:schema", 1)
            store.close()

            store = RedisStorage(url, clock=clock)
            assert store.schema_version() == SCHEMA_VERSION
            assert [r.client_id for r in store.list_registrations(None).items] == ["client-1"]
            registration = store.get_registration("client-1")
            assert registration is not None and registration.generation == 1
            [revocation] = store.revocations_after(0)
            assert (revocation.kind, revocation.subject, revocation.generation) == (
                RevocationKind.REGISTRATION,
                "client-1",
                1,
            )
            assert store.revocation_head().seq == 1
            rt = store.get_refresh_token("rt-1")
            assert rt is not None and rt.scopes == ("devices:read",)
        finally:
            store.close()
            client.close()


DAY = 86400 * US
#: Version 2 registrations, each a way of expiring: (client ID, created, own expiry, secrets' and
#: certificates' ends, the effective expiry the migration must store), times in microseconds.
V2_REGISTRATIONS = [
    ("c-bare", 0, 50 * DAY, [], [], 0),  # no credential: its creation
    ("c-own", US, 10 * DAY, [30 * DAY], [], 10 * DAY),  # its own expiry comes first
    ("c-secrets", 2 * US, None, [10 * DAY, 40 * DAY], [], 40 * DAY),  # the last secret's end
    ("c-cert", 3 * US, 700 * DAY, [20 * DAY], [60 * DAY], 60 * DAY),  # a certificate outlasting it
    ("c-capped", 4 * US, 45 * DAY, [], [60 * DAY], 45 * DAY),
]


def _v2_rows(conn: Connection) -> None:
    at = CREATED * US
    for client_id, created, own, secret_ends, certificate_ends, _ in V2_REGISTRATIONS:
        conn.execute(
            v2.REGISTRATIONS.insert().values(
                client_id=client_id,
                tenant="site-1",
                name=client_id,
                description="",
                customer_scope="all",
                customer_ids="[]",
                enabled=True,
                created_at=at + created,
                updated_at=at + created,
                registration_expires_at=None if own is None else at + own,
                version=1,
                generation=1,
            )
        )
        for position, end in enumerate(secret_ends):
            conn.execute(
                v2.SECRETS.insert().values(
                    client_id=client_id,
                    position=position,
                    id=f"{client_id}-s{position}",
                    hint="eas_abc",
                    secret_hash="hash",
                    created_at=at,
                    expires_at=at + end,
                )
            )
        for position, end in enumerate(certificate_ends):
            conn.execute(
                v2.CERTIFICATES.insert().values(
                    client_id=client_id,
                    position=position,
                    id=f"{client_id}-c{position}",
                    thumbprint="x" * 43,
                    subject="CN=backup",
                    key_type="EC P-256",
                    public_key_pem="-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
                    not_before=at - DAY,
                    not_after=at + end,
                    created_at=at,
                )
            )


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_version_2_sql_database_gets_the_effective_expiry(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-filled from each registration's secrets and certificates (in batches: two at a time
    here), indexed, and kept from then on by the writes."""
    monkeypatch.setattr(schema, "_BACKFILL_BATCH", 2)
    clock = FrozenClock(CREATED + 10)
    with storage_url(backend, tmp_path) as url:
        engine = create_engine(engine_url(url))
        with engine.begin() as conn:
            v2.create_v2(conn)
            _v2_rows(conn)
        engine.dispose()

        store = SQLStorage(url, clock=clock)
        try:
            assert store.schema_version() == SCHEMA_VERSION
            for client_id, *_, expected in V2_REGISTRATIONS:
                loaded = store.get_registration(client_id)
                assert loaded is not None and loaded.expires_at is not None
                assert stored_expiry(url, client_id) == CREATED * US + expected == us(loaded.expires_at)
            by_expiry = ["c-bare", "c-own", "c-secrets", "c-capped", "c-cert"]
            assert listed(store.list_registrations("site-1", sort="expires_at")) == by_expiry
            assert (
                listed(store.list_registrations("site-1", sort="expires_at", descending=True))
                == by_expiry[::-1]
            )
            month = utcnow(clock) + timedelta(days=31)
            assert listed(store.list_registrations("site-1", expires_before=month)) == ["c-bare", "c-own"]
            with store._engine.connect() as conn:
                indexes = {index["name"] for index in inspect(conn).get_indexes("embedauth_registrations")}
            assert "ix_embedauth_registrations_expires_at" in indexes
            fresh = registration(clock, secrets=(secret(clock, days=1),))  # and new writes keep it
            store.create_registration(fresh)
            assert listed(store.list_registrations("site-1", sort="expires_at", limit=2)) == [
                "c-bare",
                fresh.client_id,
            ]
        finally:
            store.close()
        reopened = SQLStorage(url, clock=clock)  # a second open migrates nothing
        assert reopened.schema_version() == SCHEMA_VERSION
        assert stored_expiry(url, "c-cert") == CREATED * US + 60 * DAY
        reopened.close()


@pytest.mark.redis
def test_a_version_2_redis_store_needs_no_change(tmp_path: Path) -> None:
    """Redis computes the effective expiry from the loaded registrations: 2 to 3 only marks the store."""
    clock = FrozenClock(CREATED + 10)
    with storage_url("redis", tmp_path) as url:
        store = RedisStorage(url, clock=clock)
        try:
            late = registration(clock, secrets=(secret(clock, days=60),))
            soon = registration(clock, secrets=(secret(clock, days=30),))
            for reg in (late, soon):
                store.create_registration(reg)
            store._redis.set(f"{store._prefix}:schema", 2)
            store.close()
            store = RedisStorage(url, clock=clock)
            assert store.schema_version() == SCHEMA_VERSION
            assert listed(store.list_registrations("site-1", sort="expires_at")) == [
                soon.client_id,
                late.client_id,
            ]
        finally:
            store.close()


def _back_to_v4(url: str) -> None:
    """A current database made as version 4 left it: no last uses of credentials, no audit trail."""
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        for table, column in (
            ("embedauth_secrets", "last_used_at"),
            ("embedauth_secrets", "replaced_at"),
            ("embedauth_certificates", "last_used_at"),
        ):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE embedauth_audit"))
        conn.execute(text("UPDATE embedauth_schema SET version = 4"))
    engine.dispose()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_version_4_sql_database_gains_last_uses_and_the_audit_trail(backend: str, tmp_path: Path) -> None:
    clock = FrozenClock(CREATED + 10)
    with storage_url(backend, tmp_path) as url:
        store = SQLStorage(url, clock=clock)
        kept = registration(clock, secrets=(secret(clock), secret(clock)))
        store.create_registration(kept)
        store.record_use(kept.client_id, utcnow(clock))
        store.close()
        _back_to_v4(url)

        store = SQLStorage(url, clock=clock)
        try:
            assert store.schema_version() == SCHEMA_VERSION == 5
            loaded = store.get_registration(kept.client_id)
            assert loaded is not None and loaded.last_used_at == utcnow(clock)
            assert [s.id for s in loaded.secrets] == [s.id for s in kept.secrets]
            assert [(s.last_used_at, s.replaced_at) for s in loaded.secrets] == [(None, None)] * 2
            later = utcnow(clock) + timedelta(seconds=1)
            store.record_use(kept.client_id, later, credential_id=kept.secrets[1].id)
            loaded = store.get_registration(kept.client_id)
            assert loaded is not None and [s.last_used_at for s in loaded.secrets] == [None, later]
            assert store.list_audit_records(None).total == 0
        finally:
            store.close()


@pytest.mark.redis
def test_a_version_4_redis_store_indexes_every_refresh_token(tmp_path: Path) -> None:
    """The sweep finds idle refresh tokens through an index of them all, built by the migration."""
    from tests.storage.test_contract import refresh_token

    clock = FrozenClock(CREATED + 10)
    with storage_url("redis", tmp_path) as url:
        store = RedisStorage(url, clock=clock)
        try:
            tokens = [refresh_token(clock, user=user) for user in ("alice", "bob")]
            for token in tokens:
                store.add_refresh_token(token)
            store._redis.delete(store._all_refresh_tokens)
            store._redis.set(f"{store._prefix}:schema", 4)
            assert store.idle_refresh_tokens(utcnow(clock) + timedelta(days=1)) == []  # unindexed
            store.close()
            store = RedisStorage(url, clock=clock)
            assert store.schema_version() == SCHEMA_VERSION
            idle = store.idle_refresh_tokens(utcnow(clock) + timedelta(days=1))
            assert sorted(t.id for t in idle) == sorted(t.id for t in tokens)
        finally:
            store.close()
