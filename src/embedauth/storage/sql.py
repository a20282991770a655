"""SQL storage on SQLAlchemy Core: SQLite, PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL).

Layout (tables prefixed ``embedauth_``): ``permissions``; ``registrations`` with their children
``registration_scopes``, ``secrets`` and ``certificates`` (``ON DELETE CASCADE``, each ordered by a
``position`` column so tuples round-trip); ``once`` (one-time keys); ``revocations`` (an
autoincrement ``seq``); ``signing_keys``; ``refresh_tokens``; and ``schema``, one row holding the
layout version, which :data:`MIGRATIONS` raise to ``SCHEMA_VERSION`` in one transaction.

Why it is safe without application locks:

* ``registration_scopes.permission`` is a foreign key to the catalog with ``ON DELETE RESTRICT``:
  the database itself refuses a scope that does not exist and the removal of one that is held,
  however the two race. Scopes are checked first under a key-share lock for a precise message;
  the key is the final guard.
* ``save_registration`` is ``UPDATE … WHERE version = :expected``: a compare-and-set that the
  database serializes on the row. ``consume_once`` relies on the primary key.
* ``add_revocation`` locks the ``schema`` row while it inserts, so revocations commit in ``seq``
  order and a reader that has seen a ``seq`` never later finds a smaller one appear.
* PostgreSQL and MariaDB write at READ COMMITTED (no gap locks, no serialization failures on the
  compare-and-set) and read at REPEATABLE READ (a registration and its children from one snapshot).
  SQLite runs in WAL mode and starts every write with ``BEGIN IMMEDIATE``, so writers queue on the
  busy timeout instead of failing with "database is locked" when a read lock cannot be upgraded.

Change feed (PostgreSQL only; SQLite and MariaDB are polled): ``add_revocation`` calls ``pg_notify``
in the inserting transaction, so the notification is delivered on commit and never for a rolled-back
entry. The channel is ``embedauth_revocations_`` and a hash of ``current_schema()``, so deployments
(or test runs) in different schemas of one database do not wake each other; NOTIFY does not cross
databases anyway. :class:`PostgresChangeFeed` LISTENs on a psycopg connection of its own (autocommit,
from the same URL, ``application_name`` ending in ``feed-<random>``).

Times are BIGINT microseconds since the Unix epoch: exact for any aware datetime, and compared and
ordered as integers on every database. Text compares and identifiers sort by code point everywhere
(``utf8mb4_bin`` on MariaDB, ``"C"`` on PostgreSQL), as in the memory backend; searches fold case
with ``lower()`` and nothing else (no accent folding).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.types import TypeEngine

from embedauth.clock import Clock, from_timestamp
from embedauth.errors import (
    AlreadyExists,
    ConfigurationError,
    EmbedAuthError,
    NotFound,
    PermissionInUse,
    PermissionNotFound,
    RefreshTokenNotFound,
    RegistrationNotFound,
    UnknownPermission,
)
from embedauth.models import (
    Access,
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
from embedauth.storage.base import SCHEMA_VERSION, ChangeFeed, ConnectionFeed, Storage

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "PostgresChangeFeed", "SQLStorage"]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_ONCE_KEY = 128
_PURGE_BATCH = 100
_MIGRATION_ATTEMPTS = 5
_READ = "embedauth_read"


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

_SCHEMA = Table(
    "embedauth_schema",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    **_MYSQL,
)
_PERMISSIONS = Table(
    "embedauth_permissions",
    METADATA,
    Column("name", _key(191), primary_key=True),
    Column("description", Text, nullable=False),
    Column("access", String(16), nullable=False),
    _at("created_at"),
    **_MYSQL,
)
_REGISTRATIONS = Table(
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
_SCOPES = Table(
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
_SECRETS = Table(
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
_CERTIFICATES = Table(
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
_ONCE = Table(
    "embedauth_once",
    METADATA,
    Column("key", _key(_MAX_ONCE_KEY), primary_key=True),
    _at("expires_at"),
    Index("ix_embedauth_once_expires_at", "expires_at"),
    **_MYSQL,
)
_REVOCATIONS = Table(
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
_SIGNING_KEYS = Table(
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
_REFRESH_TOKENS = Table(
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


def _create_v1(conn: Connection) -> None:
    METADATA.create_all(conn, checkfirst=True)


#: ``MIGRATIONS[n]`` takes the stored layout from version ``n - 1`` to ``n`` (0: nothing stored).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}


# ---------------------------------------------------------------- conversions


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else _us(moment)


def _time(us: int) -> datetime:
    return _EPOCH + us * _MICROSECOND


def _time_or_none(us: int | None) -> datetime | None:
    return None if us is None else _time(us)


def _once_key(key: str) -> str:
    """The key as stored: verbatim if short, else its digest padded to a length no verbatim key has."""
    if len(key) < _MAX_ONCE_KEY:
        return key
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}".ljust(_MAX_ONCE_KEY, ".")


def _registration_row(r: Registration) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "tenant": r.tenant,
        "name": r.name,
        "description": r.description,
        "customer_scope": r.customer_scope.kind.value,
        "customer_ids": json.dumps(list(r.customer_scope.ids)),
        "enabled": r.enabled,
        "created_at": _us(r.created_at),
        "updated_at": _us(r.updated_at),
        "registration_expires_at": _us_or_none(r.registration_expires_at),
        "last_used_at": _us_or_none(r.last_used_at),
        "version": r.version,
    }


def _children_rows(r: Registration) -> dict[Table, list[dict[str, Any]]]:
    cid = r.client_id
    return {
        _SCOPES: [{"client_id": cid, "position": i, "permission": s} for i, s in enumerate(r.scopes)],
        _SECRETS: [
            {
                "client_id": cid,
                "position": i,
                "id": s.id,
                "hint": s.hint,
                "secret_hash": s.secret_hash,
                "created_at": _us(s.created_at),
                "expires_at": _us(s.expires_at),
            }
            for i, s in enumerate(r.secrets)
        ],
        _CERTIFICATES: [
            {
                "client_id": cid,
                "position": i,
                "id": c.id,
                "thumbprint": c.thumbprint,
                "subject": c.subject,
                "key_type": c.key_type,
                "public_key_pem": c.public_key_pem,
                "not_before": _us(c.not_before),
                "not_after": _us(c.not_after),
                "created_at": _us(c.created_at),
            }
            for i, c in enumerate(r.certificates)
        ],
    }


def _secret(row: Row[Any]) -> SecretCredential:
    return SecretCredential(row.id, row.hint, row.secret_hash, _time(row.created_at), _time(row.expires_at))


def _certificate(row: Row[Any]) -> CertificateCredential:
    return CertificateCredential(
        id=row.id,
        thumbprint=row.thumbprint,
        subject=row.subject,
        key_type=row.key_type,
        public_key_pem=row.public_key_pem,
        not_before=_time(row.not_before),
        not_after=_time(row.not_after),
        created_at=_time(row.created_at),
    )


def _permission(row: Row[Any]) -> Permission:
    return Permission(row.name, row.description, Access(row.access), _time(row.created_at))


def _signing_key_row(k: SigningKey) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "alg": k.alg,
        "public_jwk": k.public_jwk,
        "private_key": k.private_key,
        "encrypted": k.encrypted,
        "created_at": _us(k.created_at),
        "activates_at": _us(k.activates_at),
        "retires_at": _us_or_none(k.retires_at),
        "expires_at": _us_or_none(k.expires_at),
    }


def _signing_key(row: Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        alg=row.alg,
        public_jwk=row.public_jwk,
        private_key=bytes(row.private_key),
        encrypted=row.encrypted,
        created_at=_time(row.created_at),
        activates_at=_time(row.activates_at),
        retires_at=_time_or_none(row.retires_at),
        expires_at=_time_or_none(row.expires_at),
    )


def _refresh_token_row(t: RefreshToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "user": t.user,
        "scopes": json.dumps(list(t.scopes)),
        "hint": t.hint,
        "token_hash": t.token_hash,
        "created_at": _us(t.created_at),
        "last_used_at": _us_or_none(t.last_used_at),
        "revoked_at": _us_or_none(t.revoked_at),
        "tenant": t.tenant,
    }


def _refresh_token(row: Row[Any]) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        user=row.user,
        scopes=tuple(json.loads(row.scopes)),
        hint=row.hint,
        token_hash=row.token_hash,
        created_at=_time(row.created_at),
        last_used_at=_time_or_none(row.last_used_at),
        revoked_at=_time_or_none(row.revoked_at),
        tenant=row.tenant,
    )


@contextlib.contextmanager
def _on_integrity(error: EmbedAuthError) -> Iterator[None]:
    """Raise ``error`` for a constraint violation of the statement run inside."""
    try:
        yield
    except IntegrityError as exc:
        raise error from exc


# ---------------------------------------------------------------- engines


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL for a storage URL, on the one driver supported for each database."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError("cannot parse the SQL storage URL") from exc
    backend, _, driver = parsed.drivername.partition("+")
    backend = {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)
    wanted = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}.get(backend)
    if wanted is None or driver not in ("", wanted):
        raise ConfigurationError(
            f"unsupported SQL scheme {parsed.drivername!r}: use sqlite, postgresql[+psycopg] "
            "or mysql/mariadb[+pymysql]"
        )
    parsed = parsed.set(drivername=f"{backend}+{wanted}")
    if backend == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(
            "SQLite storage needs a file (sqlite:///path/embedauth.db); use memory:// instead"
        )
    return parsed


def _sqlite_lower(value: object) -> object:
    """Replaces SQLite's ASCII-only ``lower()``, so searches fold case as on the other databases."""
    return value.lower() if isinstance(value, str) else value


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function("lower", 1, _sqlite_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ) else "BEGIN IMMEDIATE")


def _create_engine(url: URL) -> Engine:
    pool = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    if url.get_backend_name() != "sqlite":
        return create_engine(url, isolation_level="READ COMMITTED", **pool)
    engine = create_engine(url, connect_args={"timeout": 30}, **pool)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


# ---------------------------------------------------------------- PostgreSQL change feed

#: The longest one blocking read of a feed lasts: how late a :meth:`PostgresChangeFeed.close` from
#: another thread is noticed. Such a read is a local ``select`` on the socket, not a round trip.
#: libpq options of the feed connection unless the URL sets them: TCP keepalives notice a server that
#: vanished without closing the connection within about a minute.
_FEED_CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _feed_channel(schema: str | None) -> str:
    """The NOTIFY channel of the tables in ``schema`` (an identifier well under 63 bytes)."""
    return "embedauth_revocations_" + hashlib.sha256((schema or "").encode()).hexdigest()[:16]


class PostgresChangeFeed(ConnectionFeed):
    """LISTEN on the storage's revocation channel, over a psycopg connection of its own."""

    def __init__(self, connect_kwargs: Mapping[str, Any], channel: str) -> None:
        import psycopg

        self.errors = (psycopg.Error, OSError)
        self._kwargs = {**_FEED_CONNECT_DEFAULTS, **connect_kwargs}
        self._notify_channel = channel
        base = str(self._kwargs.get("application_name") or "embedauth")
        #: The feed connection's ``application_name`` (in ``pg_stat_activity``): unique per feed.
        self.application_name = f"{base[:40]} feed-{secrets.token_hex(4)}"
        self._kwargs["application_name"] = self.application_name
        self._conn: psycopg.Connection[Any] | None = None
        super().__init__()

    def _connect(self) -> None:
        """LISTEN; once this returns, every later commit's NOTIFY reaches the feed."""
        import psycopg
        from psycopg import sql

        self._conn = psycopg.connect(autocommit=True, **self._kwargs)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._notify_channel)))

    def _connected(self) -> bool:
        return self._conn is not None

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _next(self, timeout: float) -> bool:
        assert self._conn is not None
        return bool(list(self._conn.notifies(timeout=timeout, stop_after=1)))


class SQLStorage(Storage):
    driver_errors = (SQLAlchemyError,)

    def __init__(self, url: str, *, clock: Clock) -> None:
        super().__init__(url, clock=clock)
        target = engine_url(url)
        try:
            self._engine = _create_engine(target)
        except ImportError as exc:
            extra = "postgres" if target.get_backend_name() == "postgresql" else "mysql"
            raise ConfigurationError(f"{target.drivername} needs: pip install 'embedauth[{extra}]'") from exc
        snapshot = {} if target.get_backend_name() == "sqlite" else {"isolation_level": "REPEATABLE READ"}
        self._reader = self._engine.execution_options(**{_READ: True}, **snapshot)
        self._notify_channel: str | None = None
        try:
            with self.translate_errors():
                self._migrate()
                if target.get_backend_name() == "postgresql":
                    with self._engine.connect() as conn:
                        self._notify_channel = _feed_channel(
                            conn.execute(select(func.current_schema())).scalar()
                        )
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def open_change_feed(self) -> ChangeFeed | None:
        """A LISTEN feed on PostgreSQL; None (poll) on SQLite and MariaDB."""
        if self._notify_channel is None:
            return None
        # The arguments SQLAlchemy connects with, URL query (``options=-csearch_path=…``) included;
        # less its adapters map: the feed only LISTENs.
        _, params = self._engine.dialect.create_connect_args(self._engine.url)
        return PostgresChangeFeed({k: v for k, v in params.items() if k != "context"}, self._notify_channel)

    def _migrate(self) -> None:
        """Bring the stored layout to ``SCHEMA_VERSION``; a concurrent first use is retried."""
        with self._engine.connect() as conn:
            for attempt in range(_MIGRATION_ATTEMPTS):
                try:
                    with conn.begin():
                        stored = self._stored_version(conn)
                        if stored > SCHEMA_VERSION:
                            newer = f"stored layout version {stored} is newer than this embedauth's"
                            raise ConfigurationError(f"{newer} ({SCHEMA_VERSION})")
                        for version in range(stored + 1, SCHEMA_VERSION + 1):
                            MIGRATIONS[version](conn)
                        if stored == 0:
                            conn.execute(insert(_SCHEMA).values(id=1, version=SCHEMA_VERSION))
                        elif stored < SCHEMA_VERSION:
                            conn.execute(update(_SCHEMA).values(version=SCHEMA_VERSION))
                    return
                except DBAPIError:
                    if attempt == _MIGRATION_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))

    @staticmethod
    def _stored_version(conn: Connection) -> int:
        if not inspect(conn).has_table(_SCHEMA.name):
            return 0
        return int(conn.execute(select(_SCHEMA.c.version)).scalar() or 0)

    def schema_version(self) -> int:
        with self.translate_errors(), self._reader.connect() as conn:
            return self._stored_version(conn)

    def _now(self) -> int:
        return _us(from_timestamp(self.clock()))

    # ---------------------------------------------------------------- permission catalog

    def add_permission(self, permission: Permission) -> None:
        row = {
            "name": permission.name,
            "description": permission.description,
            "access": permission.access.value,
            "created_at": _us(permission.created_at),
        }
        taken = AlreadyExists(f"permission {permission.name!r} already exists")
        with self.translate_errors(), self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(_PERMISSIONS).values(row))

    def get_permission(self, name: str) -> Permission | None:
        with self.translate_errors(), self._reader.connect() as conn:
            row = conn.execute(select(_PERMISSIONS).where(_PERMISSIONS.c.name == name)).first()
        return None if row is None else _permission(row)

    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        query = select(_PERMISSIONS).order_by(_PERMISSIONS.c.name)
        if contains:
            query = query.where(
                or_(
                    _PERMISSIONS.c.name.icontains(contains, autoescape=True),
                    _PERMISSIONS.c.description.icontains(contains, autoescape=True),
                )
            )
        with self.translate_errors(), self._reader.connect() as conn:
            return [_permission(row) for row in conn.execute(query)]

    def remove_permission(self, name: str) -> None:
        in_use = PermissionInUse(f"permission {name!r} is held by a registration")
        with self.translate_errors(), self._engine.begin() as conn:
            holders = conn.execute(
                select(func.count(_SCOPES.c.client_id.distinct())).where(_SCOPES.c.permission == name)
            ).scalar_one()
            if holders:
                raise PermissionInUse(f"permission {name!r} is held by {holders} registration(s)")
            with _on_integrity(in_use):
                deleted = conn.execute(delete(_PERMISSIONS).where(_PERMISSIONS.c.name == name)).rowcount
            if not deleted:
                raise PermissionNotFound(f"no permission {name!r}")

    # ---------------------------------------------------------------- registrations

    @staticmethod
    def _write_children(conn: Connection, registration: Registration, *, replace: bool) -> None:
        """Store the scopes (which must all exist), secrets and certificates, replacing any."""
        wanted = set(registration.scopes)
        if wanted:
            name = _PERMISSIONS.c.name
            lock = select(name).where(name.in_(wanted)).with_for_update(read=True, key_share=True)
            missing = sorted(wanted - set(conn.execute(lock).scalars()))
            if missing:
                raise UnknownPermission(f"not in the permission catalog: {', '.join(missing)}")
        removed = UnknownPermission(f"not in the permission catalog: one of {', '.join(sorted(wanted))}")
        for table, rows in _children_rows(registration).items():
            if replace:
                conn.execute(delete(table).where(table.c.client_id == registration.client_id))
            if rows:
                with _on_integrity(removed):
                    conn.execute(insert(table), rows)

    def create_registration(self, registration: Registration) -> None:
        taken = AlreadyExists(f"registration {registration.client_id} already exists")
        with self.translate_errors(), self._engine.begin() as conn:
            with _on_integrity(taken):
                conn.execute(insert(_REGISTRATIONS).values(_registration_row(registration)))
            self._write_children(conn, registration, replace=False)

    @staticmethod
    def _load(conn: Connection, rows: Sequence[Row[Any]]) -> list[Registration]:
        """The registrations of ``rows`` with their children: one query per child table."""
        ids = [row.client_id for row in rows]

        def children(table: Table, make: Callable[[Row[Any]], T]) -> dict[str, list[T]]:
            found: dict[str, list[T]] = defaultdict(list)
            if ids:
                query = select(table).where(table.c.client_id.in_(ids)).order_by(table.c.position)
                for child in conn.execute(query):
                    found[child.client_id].append(make(child))
            return found

        scopes = children(_SCOPES, lambda row: str(row.permission))
        secrets = children(_SECRETS, _secret)
        certificates = children(_CERTIFICATES, _certificate)
        return [
            Registration(
                client_id=row.client_id,
                tenant=row.tenant,
                name=row.name,
                description=row.description,
                scopes=tuple(scopes[row.client_id]),
                customer_scope=CustomerScope(
                    CustomerScopeKind(row.customer_scope), tuple(json.loads(row.customer_ids))
                ),
                enabled=row.enabled,
                created_at=_time(row.created_at),
                updated_at=_time(row.updated_at),
                registration_expires_at=_time_or_none(row.registration_expires_at),
                last_used_at=_time_or_none(row.last_used_at),
                secrets=tuple(secrets[row.client_id]),
                certificates=tuple(certificates[row.client_id]),
                version=row.version,
            )
            for row in rows
        ]

    def get_registration(self, client_id: str) -> Registration | None:
        query = select(_REGISTRATIONS).where(_REGISTRATIONS.c.client_id == client_id)
        with self.translate_errors(), self._reader.connect() as conn:
            found = self._load(conn, conn.execute(query).all())
        return found[0] if found else None

    def list_registrations(
        self, tenant: str, *, name_contains: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[Registration]:
        match: list[ColumnElement[bool]] = [_REGISTRATIONS.c.tenant == tenant]
        if name_contains:
            match.append(_REGISTRATIONS.c.name.icontains(name_contains, autoescape=True))
        page = (
            select(_REGISTRATIONS)
            .where(*match)
            .order_by(_REGISTRATIONS.c.created_at, _REGISTRATIONS.c.client_id)
            .offset(offset)
            .limit(limit)
        )
        with self.translate_errors(), self._reader.connect() as conn:
            total = conn.execute(select(func.count()).select_from(_REGISTRATIONS).where(*match)).scalar_one()
            items = self._load(conn, conn.execute(page).all())
        return Page(items=items, total=total, offset=offset, limit=limit)

    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        cid = _REGISTRATIONS.c.client_id
        values = _registration_row(registration)
        del values["client_id"], values["last_used_at"]
        with self.translate_errors(), self._engine.begin() as conn:
            swapped = conn.execute(
                update(_REGISTRATIONS)
                .where(cid == registration.client_id, _REGISTRATIONS.c.version == expected_version)
                .values(values)
            ).rowcount
            if not swapped:
                if conn.execute(select(cid).where(cid == registration.client_id)).first() is None:
                    raise RegistrationNotFound(f"no registration {registration.client_id}")
                return False
            self._write_children(conn, registration, replace=True)
        return True

    def record_use(self, client_id: str, at: datetime) -> None:
        used = _REGISTRATIONS.c.last_used_at
        with self.translate_errors(), self._engine.begin() as conn:
            conn.execute(
                update(_REGISTRATIONS)
                .where(_REGISTRATIONS.c.client_id == client_id, or_(used.is_(None), used < _us(at)))
                .values(last_used_at=_us(at))
            )

    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        wanted = list(dict.fromkeys(client_ids))
        if not wanted:
            return []
        cid = _REGISTRATIONS.c.client_id
        with self.translate_errors(), self._engine.begin() as conn:
            present = set(conn.execute(select(cid).where(cid.in_(wanted)).with_for_update()).scalars())
            conn.execute(delete(_REGISTRATIONS).where(cid.in_(present)))
        return [c for c in wanted if c in present]

    # ---------------------------------------------------------------- one-time keys

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        stored, now = _once_key(key), self._now()
        expired = _ONCE.c.expires_at <= now
        with self.translate_errors():
            try:
                with self._engine.begin() as conn:
                    stale = conn.execute(select(_ONCE.c.key).where(expired).limit(_PURGE_BATCH)).scalars()
                    conn.execute(delete(_ONCE).where(_ONCE.c.key.in_([stored, *stale]), expired))
                    conn.execute(insert(_ONCE).values(key=stored, expires_at=_us(expires_at)))
            except IntegrityError:
                return False
        return True

    # ---------------------------------------------------------------- revocations

    def add_revocation(self, revocation: Revocation) -> int:
        row = {
            "kind": revocation.kind.value,
            "subject": revocation.subject,
            "since": _us(revocation.since),
            "expires_at": _us(revocation.expires_at),
        }
        with self.translate_errors(), self._engine.begin() as conn:
            conn.execute(select(_SCHEMA.c.version).with_for_update())
            # Expired entries are purged here, in a write that happens anyway, so that reading
            # (every verifier, twice a second) stays a read.
            conn.execute(delete(_REVOCATIONS).where(_REVOCATIONS.c.expires_at <= self._now()))
            key = conn.execute(insert(_REVOCATIONS).values(row)).inserted_primary_key
            if self._notify_channel is not None:  # delivered on commit: the entry is readable by then
                conn.execute(select(func.pg_notify(self._notify_channel, "")))
        assert key is not None
        return int(key[0])

    def revocations_after(self, seq: int) -> list[Revocation]:
        live = (_REVOCATIONS.c.seq > seq) & (_REVOCATIONS.c.expires_at > self._now())
        with self.translate_errors(), self._reader.connect() as conn:
            rows = conn.execute(select(_REVOCATIONS).where(live).order_by(_REVOCATIONS.c.seq)).all()
        return [
            Revocation(RevocationKind(r.kind), r.subject, _time(r.since), _time(r.expires_at), int(r.seq))
            for r in rows
        ]

    # ---------------------------------------------------------------- signing keys

    def add_signing_key(self, key: SigningKey) -> None:
        taken = AlreadyExists(f"signing key {key.kid} already exists")
        with self.translate_errors(), self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(_SIGNING_KEYS).values(_signing_key_row(key)))

    def list_signing_keys(self) -> list[SigningKey]:
        query = select(_SIGNING_KEYS).order_by(_SIGNING_KEYS.c.created_at, _SIGNING_KEYS.c.kid)
        with self.translate_errors(), self._reader.connect() as conn:
            return [_signing_key(row) for row in conn.execute(query)]

    def save_signing_key(self, key: SigningKey) -> None:
        self._replace(_SIGNING_KEYS.c.kid, _signing_key_row(key), NotFound(f"no signing key {key.kid}"))

    def delete_signing_key(self, kid: str) -> None:
        with self.translate_errors(), self._engine.begin() as conn:
            conn.execute(delete(_SIGNING_KEYS).where(_SIGNING_KEYS.c.kid == kid))

    # ---------------------------------------------------------------- refresh tokens

    def add_refresh_token(self, token: RefreshToken) -> None:
        taken = AlreadyExists(f"refresh token {token.id} already exists")
        with self.translate_errors(), self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(_REFRESH_TOKENS).values(_refresh_token_row(token)))

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        with self.translate_errors(), self._reader.connect() as conn:
            row = conn.execute(select(_REFRESH_TOKENS).where(_REFRESH_TOKENS.c.id == token_id)).first()
        return None if row is None else _refresh_token(row)

    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        t = _REFRESH_TOKENS
        query = select(t).where(t.c.user == user).order_by(t.c.created_at, t.c.id)
        with self.translate_errors(), self._reader.connect() as conn:
            return [_refresh_token(row) for row in conn.execute(query)]

    def record_refresh_token_use(self, token_id: str, at: datetime) -> None:
        used = _REFRESH_TOKENS.c.last_used_at
        with self.translate_errors(), self._engine.begin() as conn:
            conn.execute(
                update(_REFRESH_TOKENS)
                .where(_REFRESH_TOKENS.c.id == token_id, or_(used.is_(None), used < _us(at)))
                .values(last_used_at=_us(at))
            )

    def save_refresh_token(self, token: RefreshToken) -> None:
        self._replace(
            _REFRESH_TOKENS.c.id,
            _refresh_token_row(token),
            RefreshTokenNotFound(f"no refresh token {token.id}"),
        )

    def _replace(self, key: Column[str], row: dict[str, Any], missing: NotFound) -> None:
        """Overwrite the row whose ``key`` column matches ``row``; ``missing`` if there is none."""
        with self.translate_errors(), self._engine.begin() as conn:
            if not conn.execute(update(key.table).where(key == row[key.name]).values(row)).rowcount:
                raise missing
