"""The SQL layout of embedauth's schema version 2, frozen as it was released (a database created
by it, not one migrated to it from version 1): test data for the migration tests. Never edit it to
follow the current layout (that is src/embedauth/storage/sql/schema.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

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
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

from embedauth.storage.sql.schema import KeyString  # unchanged since version 2

_MAX_ONCE_KEY = 128


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
    Index("ix_embedauth_registrations_tenant", "tenant", "created_at", "client_id"),
    Index("ix_embedauth_registrations_created", "created_at", "client_id"),
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
    **_MYSQL,
)
ONCE = Table(
    "embedauth_once",
    METADATA,
    Column("key", _key(_MAX_ONCE_KEY), primary_key=True),
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


def create_v2(conn: Connection) -> None:
    """Create the version 2 tables as a new database got them, and mark it as version 2."""
    METADATA.create_all(conn)
    conn.execute(SCHEMA.insert().values(id=1, version=2))
    conn.execute(REVOCATION_HEAD.insert().values(id=1, epoch=secrets.token_hex(8), seq=0, max_token_age=0))
