"""The SQL layout of embedauth 0.1 (schema version 1), frozen as it was released: test data for
the migration tests. Never edit it to follow the current layout (that is src/embedauth/storage/sql/schema.py)."""

from __future__ import annotations

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
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

_MAX_ONCE_KEY = 128


def _key(length: int) -> TypeEngine[str]:
    """An identifier column: case-sensitive and ordered by code point on every database."""
    return (
        String(length)
        .with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")
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
    Index("ix_embedauth_registrations_tenant", "tenant", "created_at", "client_id"),
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
REVOCATIONS = Table(
    "embedauth_revocations",
    METADATA,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(191), nullable=False),
    _at("since"),
    _at("expires_at"),
    Index("ix_embedauth_revocations_expires_at", "expires_at"),
    sqlite_autoincrement=True,
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
    Index("ix_embedauth_refresh_tokens_user", "user", "created_at", "id"),
    **_MYSQL,
)


def create_v1(conn: Connection) -> None:
    """Create the version 1 tables and mark the database as version 1."""
    METADATA.create_all(conn)
    conn.execute(SCHEMA.insert().values(id=1, version=1))
