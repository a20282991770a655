"""The SQL layout: every table, and the migrations that bring a database to ``SCHEMA_VERSION``.

Tables (prefixed ``embedauth_``): ``permissions``; ``registrations`` with their children
``registration_scopes``, ``secrets`` and ``certificates`` (``ON DELETE CASCADE``, each ordered by a
``position`` column so tuples round-trip; a registration's row also keeps its effective
``expires_at``, derived from them, to sort and filter listings by); ``once`` (one-time keys); ``revocation_log`` (one row
per kind and subject, ``seq`` assigned from ``revocation_head``, the one row that also holds the
log's epoch and the deployment's ``max_token_age``); ``signing_keys``; ``refresh_tokens``; ``apps``
and ``app_connections`` (one row per app and tenant, deleted with the app or with the connection's
registration, version 4); ``audit`` (the audit trail, append-only, indexed newest first overall,
per tenant and per client, version 5); and
``schema``, one row holding the layout version, which :data:`MIGRATIONS` raise to
``SCHEMA_VERSION`` in one transaction.

``registration_scopes.permission`` is a foreign key to the catalog with ``ON DELETE RESTRICT``: the
database itself refuses a scope that does not exist and the removal of one that is held, however the
two race.

Times are BIGINT microseconds since the Unix epoch (see :mod:`.rows`). Text compares and identifiers
sort by code point everywhere (``utf8mb4_bin`` on MariaDB, ``"C"`` on PostgreSQL), as in the memory
backend.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "APPS",
    "APP_CONNECTIONS",
    "AUDIT",
    "CERTIFICATES",
    "MAX_ONCE_KEY",
    "METADATA",
    "MIGRATIONS",
    "ONCE",
    "PERMISSIONS",
    "REFRESH_TOKENS",
    "REGISTRATIONS",
    "REVOCATION_HEAD",
    "REVOCATION_LOG",
    "SCHEMA",
    "SCOPES",
    "SECRETS",
    "SIGNING_KEYS",
    "KeyString",
    "create",
]

#: The longest one-time key stored verbatim (longer ones are stored as a digest, see :mod:`.rows`).
MAX_ONCE_KEY = 128


class KeyString(TypeDecorator[str]):
    """On MySQL and MariaDB, an identifier column compared byte for byte with no padding.

    Their ``utf8mb4_bin`` is a PAD SPACE collation: ``'x'`` and ``'x '`` are the same key, so a
    client ID or a one-time ``jti`` with a trailing space would collide with another. The column is
    declared with the server's NO PAD binary collation instead (``utf8mb4_nopad_bin`` on MariaDB,
    ``utf8mb4_0900_bin`` on MySQL 8).
    """

    impl = String
    cache_ok = True


@compiles(KeyString, "mysql")
def _key_string_mysql(type_: KeyString, compiler: Any, **kw: Any) -> str:
    collation = "utf8mb4_nopad_bin" if compiler.dialect.is_mariadb else "utf8mb4_0900_bin"
    length = cast(String, type_.impl_instance).length
    return f"VARCHAR({length}) CHARACTER SET utf8mb4 COLLATE {collation}"


def _key(length: int) -> TypeEngine[str]:
    """An identifier column: case-sensitive, exact and ordered by code point on every database."""
    return (
        String(length)
        .with_variant(KeyString(length), "mysql")
        .with_variant(postgresql.VARCHAR(length, collation="C"), "postgresql")
    )


def _at(name: str, *, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


def _child_of_registration() -> Iterator[Column[Any]]:
    yield Column(
        "client_id",
        _key(64),
        ForeignKey("embedauth_registrations.client_id", ondelete="CASCADE"),
        primary_key=True,
    )
    yield Column("position", Integer, primary_key=True, autoincrement=False)


_MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
METADATA = MetaData()

SCHEMA = Table(
    "embedauth_schema",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    **_MYSQL,
)
PERMISSIONS = Table(
    "embedauth_permissions",
    METADATA,
    Column("name", _key(191), primary_key=True),
    Column("description", Text, nullable=False),
    Column("access", String(16), nullable=False),
    _at("created_at"),
    **_MYSQL,
)
REGISTRATIONS = Table(
    "embedauth_registrations",
    METADATA,
    Column("client_id", _key(64), primary_key=True),
    Column("tenant", _key(191), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("customer_scope", String(16), nullable=False),
    Column("customer_ids", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    _at("registration_expires_at", nullable=True),
    _at("last_used_at", nullable=True),
    Column("version", Integer, nullable=False),
    Column("generation", BigInteger, nullable=False),
    # The effective expiry (Registration.expires_at: its own and its credentials'), written with
    # the registration so listings sort and filter by it without loading children (version 3).
    _at("expires_at", nullable=True),
    Index("ix_embedauth_registrations_tenant", "tenant", "created_at", "client_id"),
    Index("ix_embedauth_registrations_created", "created_at", "client_id"),
    Index("ix_embedauth_registrations_expires_at", "expires_at"),
    **_MYSQL,
)
SCOPES = Table(
    "embedauth_registration_scopes",
    METADATA,
    *_child_of_registration(),
    Column(
        "permission",
        _key(191),
        ForeignKey("embedauth_permissions.name", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    **_MYSQL,
)
SECRETS = Table(
    "embedauth_secrets",
    METADATA,
    *_child_of_registration(),
    Column("id", _key(64), nullable=False),
    Column("hint", String(64), nullable=False),
    Column("secret_hash", Text, nullable=False),
    _at("created_at"),
    _at("expires_at"),
    _at("last_used_at", nullable=True),  # version 5
    _at("replaced_at", nullable=True),  # version 5
    **_MYSQL,
)
CERTIFICATES = Table(
    "embedauth_certificates",
    METADATA,
    *_child_of_registration(),
    Column("id", _key(64), nullable=False),
    Column("thumbprint", _key(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("key_type", String(32), nullable=False),
    Column("public_key_pem", Text, nullable=False),
    _at("not_before"),
    _at("not_after"),
    _at("created_at"),
    _at("last_used_at", nullable=True),  # version 5
    **_MYSQL,
)
ONCE = Table(
    "embedauth_once",
    METADATA,
    Column("key", _key(MAX_ONCE_KEY), primary_key=True),
    _at("expires_at"),
    Index("ix_embedauth_once_expires_at", "expires_at"),
    **_MYSQL,
)
REVOCATION_LOG = Table(
    "embedauth_revocation_log",
    METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("subject", _key(191), nullable=False),
    _at("expires_at"),
    Column("generation", BigInteger, nullable=False),
    Column("client_id", String(191), nullable=True),
    Column("issued_at", BigInteger, nullable=False),
    UniqueConstraint("kind", "subject", name="uq_embedauth_revocation_log_subject"),
    Index("ix_embedauth_revocation_log_expires_at", "expires_at"),
    **_MYSQL,
)
#: One row: the revocation log's epoch, last ``seq`` and the deployment's ``max_token_age``.
REVOCATION_HEAD = Table(
    "embedauth_revocation_head",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("max_token_age", BigInteger, nullable=False),
    **_MYSQL,
)
SIGNING_KEYS = Table(
    "embedauth_signing_keys",
    METADATA,
    Column("kid", _key(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("encrypted", Boolean, nullable=False),
    _at("created_at"),
    _at("activates_at"),
    _at("retires_at", nullable=True),
    _at("expires_at", nullable=True),
    **_MYSQL,
)
REFRESH_TOKENS = Table(
    "embedauth_refresh_tokens",
    METADATA,
    Column("id", _key(64), primary_key=True),
    Column("user", _key(191), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("hint", String(64), nullable=False),
    Column("token_hash", Text, nullable=False),
    _at("created_at"),
    _at("last_used_at", nullable=True),
    _at("revoked_at", nullable=True),
    Column("tenant", String(191), nullable=True),
    Column("customer_scope", Text, nullable=False),
    Index("ix_embedauth_refresh_tokens_user", "user", "created_at", "id"),
    **_MYSQL,
)

#: The audit trail (version 5): append-only; listed by ``(at, id)`` descending.
AUDIT = Table(
    "embedauth_audit",
    METADATA,
    Column("id", _key(32), primary_key=True),
    _at("at"),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("tenant", _key(191), nullable=True),
    Column("client_id", _key(255), nullable=True),
    Column("target", String(255), nullable=True),
    Column("source", String(255), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_embedauth_audit_at", "at", "id"),
    Index("ix_embedauth_audit_tenant", "tenant", "at", "id"),
    Index("ix_embedauth_audit_client", "client_id", "at", "id"),
    **_MYSQL,
)


APPS = Table(
    "embedauth_apps",
    METADATA,
    Column("app_id", _key(64), primary_key=True),
    Column("owner", _key(191), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("scopes", Text, nullable=False),  # a JSON list
    Column("allowed_tenants", Text, nullable=True),  # a JSON list; NULL: any tenant
    _at("created_at"),
    _at("updated_at"),
    Column("version", Integer, nullable=False),
    Index("ix_embedauth_apps_owner", "owner", "created_at", "app_id"),
    **_MYSQL,
)
APP_CONNECTIONS = Table(
    "embedauth_app_connections",
    METADATA,
    Column("app_id", _key(64), ForeignKey("embedauth_apps.app_id", ondelete="CASCADE"), primary_key=True),
    Column("tenant", _key(191), primary_key=True),
    Column(
        "client_id",
        _key(64),
        ForeignKey("embedauth_registrations.client_id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("connected_by", String(191), nullable=False),
    _at("created_at"),
    Index("ix_embedauth_app_connections_tenant", "tenant", "created_at"),
    **_MYSQL,
)


def create(conn: Connection) -> None:
    """Create every table of the current layout in an empty database."""
    METADATA.create_all(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    """Version 1 to 2: registration generations, the keyed revocation log with its head, refresh
    tokens' customer scope, and (MySQL, MariaDB) identifiers compared without padding."""
    dialect = conn.dialect.name
    conn.execute(text("ALTER TABLE embedauth_registrations ADD COLUMN generation BIGINT NOT NULL DEFAULT 1"))
    conn.execute(
        text("ALTER TABLE embedauth_refresh_tokens ADD COLUMN customer_scope TEXT")
        if dialect == "mysql"
        else text(
            "ALTER TABLE embedauth_refresh_tokens ADD COLUMN customer_scope TEXT NOT NULL DEFAULT 'all'"
        )
    )
    if dialect == "mysql":  # MySQL's TEXT columns take no default
        conn.execute(text("UPDATE embedauth_refresh_tokens SET customer_scope = 'all'"))
        conn.execute(text("ALTER TABLE embedauth_refresh_tokens MODIFY customer_scope TEXT NOT NULL"))
    REVOCATION_LOG.create(conn)
    REVOCATION_HEAD.create(conn)
    # The index as declared on the table (an Index built here would attach itself to it a second time).
    next(
        index for index in REGISTRATIONS.indexes if index.name == "ix_embedauth_registrations_created"
    ).create(conn)
    # Version 1 entries become keyed ones: a pause "since t" refuses every token issued before the
    # upgrade (they carry no generation), a refresh token's entry is a credential's.
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, subject, expires_at in conn.execute(
        text("SELECT kind, subject, expires_at FROM embedauth_revocations")
    ):
        kind = "credential" if kind == "refresh_token" else kind
        row = merged.setdefault((kind, subject), {"kind": kind, "subject": subject, "expires_at": 0})
        row["expires_at"] = max(row["expires_at"], expires_at)
        row["generation"] = 1 if kind == "registration" else 0
    rows = [
        {**row, "seq": seq, "client_id": None, "issued_at": 0} for seq, row in enumerate(merged.values(), 1)
    ]
    if rows:
        conn.execute(REVOCATION_LOG.insert(), rows)
    conn.execute(
        REVOCATION_HEAD.insert().values(id=1, epoch=secrets.token_hex(8), seq=len(rows), max_token_age=0)
    )
    conn.execute(text("DROP TABLE embedauth_revocations"))
    # A refresh token without scopes meant "every permission, as the catalog grows"; it now means
    # what it says, so such tokens keep the catalog's read permissions (never a write one).
    readable = sorted(
        conn.execute(text("SELECT name FROM embedauth_permissions WHERE access = 'read'")).scalars()
    )
    conn.execute(
        text("UPDATE embedauth_refresh_tokens SET scopes = :s WHERE scopes = '[]'"),
        {"s": json.dumps(readable)},
    )
    if dialect == "mysql":
        _without_padding(conn)


#: Every identifier column of version 1: table, column, length (all NOT NULL).
_V1_KEYS = (
    ("embedauth_permissions", "name", 191),
    ("embedauth_registrations", "client_id", 64),
    ("embedauth_registrations", "tenant", 191),
    ("embedauth_registration_scopes", "client_id", 64),
    ("embedauth_registration_scopes", "permission", 191),
    ("embedauth_secrets", "client_id", 64),
    ("embedauth_secrets", "id", 64),
    ("embedauth_certificates", "client_id", 64),
    ("embedauth_certificates", "id", 64),
    ("embedauth_certificates", "thumbprint", 64),
    ("embedauth_once", "key", MAX_ONCE_KEY),
    ("embedauth_signing_keys", "kid", 64),
    ("embedauth_refresh_tokens", "id", 64),
    ("embedauth_refresh_tokens", "user", 191),
)


def _without_padding(conn: Connection) -> None:
    """MySQL and MariaDB: identifier columns to the NO PAD collation (foreign keys dropped, then
    restored, since neither server changes the collation of a column a foreign key uses)."""
    inspector = inspect(conn)
    foreign_keys = [
        (table, fk)
        for table in ("embedauth_registration_scopes", "embedauth_secrets", "embedauth_certificates")
        for fk in inspector.get_foreign_keys(table)
    ]
    for table, fk in foreign_keys:
        conn.execute(text(f"ALTER TABLE {table} DROP FOREIGN KEY `{fk['name']}`"))
    for table, column, length in _V1_KEYS:
        declared = KeyString(length).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table} MODIFY `{column}` {declared} NOT NULL"))
    for table, fk in foreign_keys:
        ondelete = (fk.get("options") or {}).get("ondelete", "RESTRICT")
        columns = ", ".join(f"`{c}`" for c in fk["constrained_columns"])
        referred = ", ".join(f"`{c}`" for c in fk["referred_columns"])
        conn.execute(
            text(
                f"ALTER TABLE {table} ADD CONSTRAINT `{fk['name']}` FOREIGN KEY ({columns}) "
                f"REFERENCES {fk['referred_table']} ({referred}) ON DELETE {ondelete}"
            )
        )


_BACKFILL_BATCH = 500


def _v3(conn: Connection) -> None:
    """Version 2 to 3: ``registrations.expires_at``, the effective expiry
    (:attr:`~embedauth.models.Registration.expires_at`) of each registration as loaded with its
    secrets and certificates, back-filled in batches, then indexed."""
    from embedauth.storage.sql import rows  # here: rows imports this module

    if "expires_at" not in {c["name"] for c in inspect(conn).get_columns("embedauth_registrations")}:
        # (MariaDB commits DDL as it goes: a migration retried after a failure finds it added.)
        conn.execute(text("ALTER TABLE embedauth_registrations ADD COLUMN expires_at BIGINT"))
    # Version 2's columns, by name: this migration must not follow later layouts.
    registrations = text(
        "SELECT client_id, tenant, name, description, customer_scope, customer_ids, enabled, created_at,"
        " updated_at, registration_expires_at, last_used_at, version, generation"
        " FROM embedauth_registrations WHERE client_id > :after ORDER BY client_id LIMIT :batch"
    )
    secrets_of = text(
        "SELECT client_id, id, hint, secret_hash, created_at, expires_at FROM embedauth_secrets"
        " WHERE client_id IN :ids ORDER BY client_id, position"
    ).bindparams(bindparam("ids", expanding=True))
    certificates_of = text(
        "SELECT client_id, id, thumbprint, subject, key_type, public_key_pem, not_before, not_after,"
        " created_at FROM embedauth_certificates WHERE client_id IN :ids ORDER BY client_id, position"
    ).bindparams(bindparam("ids", expanding=True))
    write = text("UPDATE embedauth_registrations SET expires_at = :expires_at WHERE client_id = :client_id")
    after = ""
    while found := conn.execute(registrations, {"after": after, "batch": _BACKFILL_BATCH}).all():
        ids = [row.client_id for row in found]
        secrets_by: dict[str, list[Any]] = {cid: [] for cid in ids}
        certificates_by: dict[str, list[Any]] = {cid: [] for cid in ids}
        for child in conn.execute(secrets_of, {"ids": ids}):
            secrets_by[child.client_id].append(rows.secret(child))
        for child in conn.execute(certificates_of, {"ids": ids}):
            certificates_by[child.client_id].append(rows.certificate(child))
        # Scopes play no part in the expiry.
        loaded = (
            rows.registration(r, [], secrets_by[r.client_id], certificates_by[r.client_id]) for r in found
        )
        conn.execute(
            write, [{"client_id": r.client_id, "expires_at": rows.us_or_none(r.expires_at)} for r in loaded]
        )
        after = ids[-1]
    next(
        index for index in REGISTRATIONS.indexes if index.name == "ix_embedauth_registrations_expires_at"
    ).create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    """Version 3 to 4: multi-tenant apps and their connections (two new tables)."""
    APPS.create(conn, checkfirst=True)
    APP_CONNECTIONS.create(conn, checkfirst=True)


def _v5(conn: Connection) -> None:
    """Version 4 to 5: ``last_used_at`` per secret and certificate, a secret's ``replaced_at``
    (rotated out with a grace period), and the audit trail."""
    for table, columns in (
        ("embedauth_secrets", ("last_used_at", "replaced_at")),
        ("embedauth_certificates", ("last_used_at",)),
    ):
        present = {c["name"] for c in inspect(conn).get_columns(table)}
        for column in columns:
            if column not in present:  # (MariaDB commits DDL as it goes: a retry finds it added)
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} BIGINT"))
    AUDIT.create(conn, checkfirst=True)


#: ``MIGRATIONS[n]`` takes a stored layout from version ``n - 1`` to ``n``. An empty database gets
#: the current layout at once (:func:`create`); version 1 was the first released.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _v2, 3: _v3, 4: _v4, 5: _v5}
