"""SQL storage on SQLAlchemy Core: SQLite, PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL).

The tables are in :mod:`.schema`, the row mapping in :mod:`.rows`, engine set-up in :mod:`.engine`
and the PostgreSQL change feed in :mod:`.postgres_feed`; this module is the storage contract over
them. Why it is safe without application locks:

* ``registration_scopes.permission`` is a foreign key to the catalog with ``ON DELETE RESTRICT``:
  the database itself refuses a scope that does not exist and the removal of one that is held,
  however the two race. Scopes are checked first under a key-share lock for a precise message;
  the key is the final guard.
* ``save_registration`` is ``UPDATE … WHERE version = :expected``: a compare-and-set that the
  database serializes on the row. ``consume_once`` relies on the primary key.
* ``add_revocation`` locks the ``schema`` row while it inserts, so revocations commit in ``seq``
  order and a reader that has seen a ``seq`` never later finds a smaller one appear. On PostgreSQL
  it also calls ``pg_notify`` in the inserting transaction (SQLite and MariaDB are polled).

Searches fold case with ``lower()`` and nothing else (no accent folding).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Row,
    Table,
    case,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from embedauth import models
from embedauth.clock import Clock, from_timestamp
from embedauth.errors import (
    AlreadyExists,
    AppNotFound,
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
    App,
    AuditRecord,
    Page,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    RevocationHead,
    SigningKey,
)
from embedauth.storage.base import (
    DEFAULT_TIMEOUT,
    SCHEMA_VERSION,
    RegistrationSort,
    Storage,
    registration_sort_key,
    wanted_tenants,
)
from embedauth.storage.feed import ChangeFeed
from embedauth.storage.sql import rows, schema
from embedauth.storage.sql.engine import READ, create_engine_for, engine_url
from embedauth.storage.sql.postgres_feed import PostgresChangeFeed, feed_channel
from embedauth.storage.sql.schema import (
    APP_CONNECTIONS,
    APPS,
    AUDIT,
    CERTIFICATES,
    MIGRATIONS,
    ONCE,
    PERMISSIONS,
    REFRESH_TOKENS,
    REGISTRATIONS,
    REVOCATION_HEAD,
    REVOCATION_LOG,
    SCHEMA,
    SCOPES,
    SECRETS,
    SIGNING_KEYS,
)

__all__ = ["SQLStorage"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PURGE_BATCH = 100
_MIGRATION_ATTEMPTS = 5


@contextlib.contextmanager
def _on_integrity(error: EmbedAuthError) -> Iterator[None]:
    """Raise ``error`` for a constraint violation of the statement run inside."""
    try:
        yield
    except IntegrityError as exc:
        raise error from exc


class SQLStorage(Storage):
    """The SQL backend for ``sqlite``, ``postgresql`` and ``mysql``/``mariadb`` URLs."""

    driver_errors = (SQLAlchemyError,)
    outage_errors = (OperationalError, InterfaceError, PoolTimeout)

    def is_outage(self, error: BaseException) -> bool:
        """A lost or refused connection, a timeout; not SQLite's busy file (a local wait, not an outage)."""
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        return super().is_outage(error) and self._engine.dialect.name != "sqlite"

    def __init__(self, url: str, *, clock: Clock, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(url, clock=clock, timeout=timeout)
        target = engine_url(url)
        try:
            self._engine = create_engine_for(target, timeout=timeout)
        except ImportError as exc:
            extra = "postgres" if target.get_backend_name() == "postgresql" else "mysql"
            raise ConfigurationError(f"{target.drivername} needs: pip install 'embedauth[{extra}]'") from exc
        snapshot = {} if target.get_backend_name() == "sqlite" else {"isolation_level": "REPEATABLE READ"}
        self._reader = self._engine.execution_options(**{READ: True}, **snapshot)
        self._notify_channel: str | None = None
        try:
            self._migrate()
            if target.get_backend_name() == "postgresql":
                with self._engine.connect() as conn:
                    self._notify_channel = feed_channel(conn.execute(select(func.current_schema())).scalar())
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
        params = {k: v for k, v in params.items() if k != "context"}
        return PostgresChangeFeed(params, self._notify_channel, timeout=self.timeout)

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
                        if stored == 0:  # an empty database: the current layout at once
                            schema.create(conn)
                            conn.execute(insert(SCHEMA).values(id=1, version=SCHEMA_VERSION))
                            conn.execute(insert(REVOCATION_HEAD).values(id=1, **_new_head()))
                        elif stored < SCHEMA_VERSION:
                            for version in range(stored + 1, SCHEMA_VERSION + 1):
                                MIGRATIONS[version](conn)
                            conn.execute(update(SCHEMA).values(version=SCHEMA_VERSION))
                    return
                except DBAPIError:
                    if attempt == _MIGRATION_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))

    @staticmethod
    def _stored_version(conn: Connection) -> int:
        if not inspect(conn).has_table(SCHEMA.name):
            return 0
        return int(conn.execute(select(SCHEMA.c.version)).scalar() or 0)

    def schema_version(self) -> int:
        with self._reader.connect() as conn:
            return self._stored_version(conn)

    def _now(self) -> int:
        return rows.us(from_timestamp(self.clock()))

    # ---------------------------------------------------------------- permission catalog

    def add_permission(self, permission: Permission) -> None:
        taken = AlreadyExists(f"permission {permission.name!r} already exists")
        with self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(PERMISSIONS).values(rows.permission_row(permission)))

    def get_permission(self, name: str) -> Permission | None:
        with self._reader.connect() as conn:
            row = conn.execute(select(PERMISSIONS).where(PERMISSIONS.c.name == name)).first()
        return None if row is None else rows.permission(row)

    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        query = select(PERMISSIONS).order_by(PERMISSIONS.c.name)
        if contains:
            query = query.where(
                or_(
                    PERMISSIONS.c.name.icontains(contains, autoescape=True),
                    PERMISSIONS.c.description.icontains(contains, autoescape=True),
                )
            )
        with self._reader.connect() as conn:
            return [rows.permission(row) for row in conn.execute(query)]

    def remove_permission(self, name: str) -> None:
        in_use = PermissionInUse(f"permission {name!r} is held by a registration")
        with self._engine.begin() as conn:
            holders = conn.execute(
                select(func.count(SCOPES.c.client_id.distinct())).where(SCOPES.c.permission == name)
            ).scalar_one()
            if holders:
                raise PermissionInUse(f"permission {name!r} is held by {holders} registration(s)")
            with _on_integrity(in_use):
                deleted = conn.execute(delete(PERMISSIONS).where(PERMISSIONS.c.name == name)).rowcount
            if not deleted:
                raise PermissionNotFound(f"no permission {name!r}")

    # ---------------------------------------------------------------- registrations

    @staticmethod
    def _write_children(conn: Connection, registration: Registration, *, replace: bool) -> None:
        """Store the scopes (which must all exist), secrets and certificates, replacing any; a
        credential kept keeps its stored ``last_used_at`` (only :meth:`record_use` moves it)."""
        wanted = set(registration.scopes)
        if wanted:
            name = PERMISSIONS.c.name
            lock = select(name).where(name.in_(wanted)).with_for_update(read=True, key_share=True)
            missing = sorted(wanted - set(conn.execute(lock).scalars()))
            if missing:
                raise UnknownPermission(f"not in the permission catalog: {', '.join(missing)}")
        removed = UnknownPermission(f"not in the permission catalog: one of {', '.join(sorted(wanted))}")
        for table, children in rows.children_rows(registration).items():
            if replace:
                if "last_used_at" in table.c:
                    # Locked: a record_use of this credential waits (it locks the registration row
                    # first, which this transaction holds), so it lands before or after, never lost.
                    used = {
                        row.id: row.last_used_at
                        for row in conn.execute(
                            select(table.c.id, table.c.last_used_at)
                            .where(table.c.client_id == registration.client_id)
                            .with_for_update()
                        )
                    }
                    children = [child | {"last_used_at": used.get(child["id"])} for child in children]
                conn.execute(delete(table).where(table.c.client_id == registration.client_id))
            if children:
                with _on_integrity(removed):
                    conn.execute(insert(table), children)

    def create_registration(self, registration: Registration) -> None:
        taken = AlreadyExists(f"registration {registration.client_id} already exists")
        with self._engine.begin() as conn:
            with _on_integrity(taken):
                conn.execute(insert(REGISTRATIONS).values(rows.registration_row(registration)))
            self._write_children(conn, registration, replace=False)

    @staticmethod
    def _load(conn: Connection, found: Sequence[Row[Any]]) -> list[Registration]:
        """The registrations of ``found`` with their children: one query per child table."""
        ids = [row.client_id for row in found]

        def children(table: Table, make: Callable[[Row[Any]], T]) -> dict[str, list[T]]:
            by_client: dict[str, list[T]] = defaultdict(list)
            if ids:
                query = select(table).where(table.c.client_id.in_(ids)).order_by(table.c.position)
                for child in conn.execute(query):
                    by_client[child.client_id].append(make(child))
            return by_client

        scopes = children(SCOPES, lambda row: str(row.permission))
        secrets = children(SECRETS, rows.secret)
        certificates = children(CERTIFICATES, rows.certificate)
        return [
            rows.registration(row, scopes[row.client_id], secrets[row.client_id], certificates[row.client_id])
            for row in found
        ]

    def get_registration(self, client_id: str) -> Registration | None:
        query = select(REGISTRATIONS).where(REGISTRATIONS.c.client_id == client_id)
        with self._reader.connect() as conn:
            found = self._load(conn, conn.execute(query).all())
        return found[0] if found else None

    def list_registrations(
        self,
        tenant: str | Collection[str] | None,
        *,
        name_contains: str | None = None,
        holding: str | None = None,
        expires_before: datetime | None = None,
        sort: RegistrationSort = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Registration]:
        order = self._registration_order(sort, descending=descending)
        r = REGISTRATIONS.c
        tenants = wanted_tenants(tenant)
        match: list[ColumnElement[bool]] = []
        if tenants is not None:
            match.append(
                r.tenant == next(iter(tenants)) if len(tenants) == 1 else r.tenant.in_(sorted(tenants))
            )
        if name_contains:
            match.append(r.name.icontains(name_contains, autoescape=True))
        if holding is not None:
            holders = select(SCOPES.c.client_id).where(SCOPES.c.permission == holding)
            match.append(r.client_id.in_(holders))
        if expires_before is not None:  # NULL (never) compares as unknown: never a match
            match.append(r.expires_at < rows.us(expires_before))
        page = select(REGISTRATIONS).where(*match).order_by(*order).offset(offset).limit(limit)
        with self._reader.connect() as conn:
            total = conn.execute(select(func.count()).select_from(REGISTRATIONS).where(*match)).scalar_one()
            items = self._load(conn, conn.execute(page).all())
        return Page(items=items, total=total, offset=offset, limit=limit)

    def _registration_order(self, sort: RegistrationSort, *, descending: bool) -> list[ColumnElement[Any]]:
        """``ORDER BY`` of the contract's listing order (:func:`~embedauth.storage.base.registration_sort_key`).

        Where NULLs go is written out (a ``CASE`` before the column) rather than left to the
        database: PostgreSQL puts them last in ascending order, SQLite and MariaDB first. Names are
        compared by code point after ``lower()``, whatever the database's default collation.
        """
        registration_sort_key(sort)  # an unknown key is refused before any query
        r = REGISTRATIONS.c
        keys: list[ColumnElement[Any]]
        if sort == "name":
            keys = [self._code_point_order(func.lower(r.name))]
        elif sort == "last_used_at":  # never used first
            keys = [case((r.last_used_at.is_(None), 0), else_=1), r.last_used_at]
        elif sort == "expires_at":  # never expiring last
            keys = [case((r.expires_at.is_(None), 1), else_=0), r.expires_at]
        elif sort == "enabled":
            keys = [r.enabled]
        else:
            keys = []
        keys += [r.created_at, r.client_id]
        return [key.desc() for key in keys] if descending else keys

    def _code_point_order(self, text: ColumnElement[str]) -> ColumnElement[str]:
        """``text`` compared by code point (and, on MariaDB, with no padding), as Python compares."""
        dialect = self._engine.dialect
        if dialect.name == "postgresql":
            return text.collate("C")
        if dialect.name == "mysql":
            return text.collate(
                "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
            )
        return text  # SQLite's BINARY collation compares UTF-8 bytes: code point order

    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        cid = REGISTRATIONS.c.client_id
        values = rows.registration_row(registration)
        del values["client_id"], values["last_used_at"]
        with self._engine.begin() as conn:
            swapped = conn.execute(
                update(REGISTRATIONS)
                .where(cid == registration.client_id, REGISTRATIONS.c.version == expected_version)
                .values(values)
            ).rowcount
            if not swapped:
                if conn.execute(select(cid).where(cid == registration.client_id)).first() is None:
                    raise RegistrationNotFound(f"no registration {registration.client_id}")
                return False
            self._write_children(conn, registration, replace=True)
        return True

    def record_use(self, client_id: str, at: datetime, *, credential_id: str | None = None) -> None:
        moment = rows.us(at)

        def later(used: Column[int]) -> ColumnElement[int]:
            return case((or_(used.is_(None), used < moment), moment), else_=used)

        with self._engine.begin() as conn:
            # Always written (the same value when not later), so that the row is locked: a
            # concurrent save_registration replacing the credentials is ordered with this.
            conn.execute(
                update(REGISTRATIONS)
                .where(REGISTRATIONS.c.client_id == client_id)
                .values(last_used_at=later(REGISTRATIONS.c.last_used_at))
            )
            if credential_id is not None:
                for table in (SECRETS, CERTIFICATES):
                    used = table.c.last_used_at
                    conn.execute(
                        update(table)
                        .where(
                            table.c.client_id == client_id,
                            table.c.id == credential_id,
                            or_(used.is_(None), used < moment),
                        )
                        .values(last_used_at=moment)
                    )

    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        wanted = list(dict.fromkeys(client_ids))
        if not wanted:
            return []
        cid = REGISTRATIONS.c.client_id
        with self._engine.begin() as conn:
            present = set(conn.execute(select(cid).where(cid.in_(wanted)).with_for_update()).scalars())
            conn.execute(delete(REGISTRATIONS).where(cid.in_(present)))
        return [c for c in wanted if c in present]

    # ---------------------------------------------------------------- one-time keys

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        stored, now = rows.once_key(key), self._now()
        expired = ONCE.c.expires_at <= now
        try:
            with self._engine.begin() as conn:
                stale = conn.execute(select(ONCE.c.key).where(expired).limit(_PURGE_BATCH)).scalars()
                conn.execute(delete(ONCE).where(ONCE.c.key.in_([stored, *stale]), expired))
                conn.execute(insert(ONCE).values(key=stored, expires_at=rows.us(expires_at)))
        except IntegrityError:
            return False
        return True

    # ---------------------------------------------------------------- revocations

    def add_revocation(self, revocation: Revocation) -> int:
        log, key = (
            REVOCATION_LOG,
            (REVOCATION_LOG.c.kind == revocation.kind.value)
            & (REVOCATION_LOG.c.subject == revocation.subject),
        )
        with self._engine.begin() as conn:
            # The head row's lock orders writers: entries commit in seq order, so a reader that has
            # seen seq n never later finds a smaller one appear.
            head = self._head(conn, lock=True)
            seq = head.seq + 1
            # Expired entries are purged here, in a write that happens anyway, so that reading
            # (every verifier, twice a second) stays a read.
            conn.execute(delete(log).where(log.c.expires_at <= self._now()))
            known = conn.execute(select(log).where(key)).first()
            merged = revocation if known is None else rows.revocation(known).merged(revocation)
            if known is not None:
                conn.execute(delete(log).where(key))
            conn.execute(insert(log).values(rows.revocation_row(dataclasses.replace(merged, seq=seq))))
            conn.execute(update(REVOCATION_HEAD).where(REVOCATION_HEAD.c.id == 1).values(seq=seq))
            if self._notify_channel is not None:  # delivered on commit: the entry is readable by then
                conn.execute(select(func.pg_notify(self._notify_channel, "")))
        return seq

    def revocations_after(self, seq: int) -> list[Revocation]:
        log = REVOCATION_LOG
        live = (log.c.seq > seq) & (log.c.expires_at > self._now())
        with self._reader.connect() as conn:
            found = conn.execute(select(log).where(live).order_by(log.c.seq)).all()
        return [entry for entry in map(_readable_revocation, found) if entry is not None]

    def revocation_head(self) -> RevocationHead:
        with self._engine.begin() as conn:
            return self._head(conn, lock=False)

    def raise_max_token_age(self, seconds: int) -> int:
        head = REVOCATION_HEAD
        with self._engine.begin() as conn:
            self._head(conn, lock=False)
            conn.execute(
                update(head)
                .where(head.c.id == 1, head.c.max_token_age < seconds)
                .values(max_token_age=seconds)
            )
            return int(conn.execute(select(head.c.max_token_age).where(head.c.id == 1)).scalar_one())

    @staticmethod
    def _head(conn: Connection, *, lock: bool) -> RevocationHead:
        """The head row, created anew (a new epoch) if someone removed it."""
        query = select(REVOCATION_HEAD).where(REVOCATION_HEAD.c.id == 1)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(insert(REVOCATION_HEAD).values(id=1, **_new_head()))
            row = conn.execute(query.with_for_update() if lock else query).one()
        return RevocationHead(row.epoch, int(row.seq), int(row.max_token_age))

    # ---------------------------------------------------------------- the audit trail

    def add_audit_records(self, records: Sequence[AuditRecord]) -> None:
        if records:
            with self._engine.begin() as conn:
                conn.execute(insert(AUDIT), [rows.audit_row(r) for r in records])

    def list_audit_records(
        self,
        tenant: str | Collection[str] | None,
        *,
        client_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        a = AUDIT.c
        tenants = wanted_tenants(tenant)
        match: list[ColumnElement[bool]] = []
        if tenants is not None:
            match.append(
                a.tenant == next(iter(tenants)) if len(tenants) == 1 else a.tenant.in_(sorted(tenants))
            )
        if client_id is not None:
            match.append(a.client_id == client_id)
        if since is not None:
            match.append(a.at >= rows.us(since))
        page = select(AUDIT).where(*match).order_by(a.at.desc(), a.id.desc()).offset(offset).limit(limit)
        with self._reader.connect() as conn:
            total = conn.execute(select(func.count()).select_from(AUDIT).where(*match)).scalar_one()
            items = [rows.audit_record(row) for row in conn.execute(page)]
        return Page(items=items, total=total, offset=offset, limit=limit)

    def prune_audit_records(self, *, before: datetime, keep: int) -> int:
        a = AUDIT.c
        with self._engine.begin() as conn:
            deleted = conn.execute(delete(AUDIT).where(a.at < rows.us(before))).rowcount
            # The newest record past the bound, found by the (at, id) index; it and older ones go.
            cut = conn.execute(
                select(a.at, a.id).order_by(a.at.desc(), a.id.desc()).offset(max(keep, 0)).limit(1)
            ).first()
            if cut is not None:
                older = or_(a.at < cut.at, (a.at == cut.at) & (a.id <= cut.id))
                deleted += conn.execute(delete(AUDIT).where(older)).rowcount
        return int(deleted)

    # ---------------------------------------------------------------- health

    def ping(self) -> None:
        with self._reader.connect() as conn:
            conn.execute(select(1))

    # ---------------------------------------------------------------- signing keys

    def add_signing_key(self, key: SigningKey) -> None:
        taken = AlreadyExists(f"signing key {key.kid} already exists")
        with self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(SIGNING_KEYS).values(rows.signing_key_row(key)))

    def list_signing_keys(self) -> list[SigningKey]:
        query = select(SIGNING_KEYS).order_by(SIGNING_KEYS.c.created_at, SIGNING_KEYS.c.kid)
        with self._reader.connect() as conn:
            return [rows.signing_key(row) for row in conn.execute(query)]

    def save_signing_key(self, key: SigningKey) -> None:
        self._replace(SIGNING_KEYS.c.kid, rows.signing_key_row(key), NotFound(f"no signing key {key.kid}"))

    def delete_signing_key(self, kid: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == kid))

    # ---------------------------------------------------------------- refresh tokens

    def add_refresh_token(self, token: RefreshToken) -> None:
        taken = AlreadyExists(f"refresh token {token.id} already exists")
        with self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(REFRESH_TOKENS).values(rows.refresh_token_row(token)))

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        with self._reader.connect() as conn:
            row = conn.execute(select(REFRESH_TOKENS).where(REFRESH_TOKENS.c.id == token_id)).first()
        return None if row is None else rows.refresh_token(row)

    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        t = REFRESH_TOKENS
        query = select(t).where(t.c.user == user).order_by(t.c.created_at, t.c.id)
        with self._reader.connect() as conn:
            return [rows.refresh_token(row) for row in conn.execute(query)]

    def record_refresh_token_use(self, token_id: str, at: datetime) -> None:
        used = REFRESH_TOKENS.c.last_used_at
        with self._engine.begin() as conn:
            conn.execute(
                update(REFRESH_TOKENS)
                .where(REFRESH_TOKENS.c.id == token_id, or_(used.is_(None), used < rows.us(at)))
                .values(last_used_at=rows.us(at))
            )

    def idle_refresh_tokens(self, before: datetime, *, limit: int = 500) -> list[RefreshToken]:
        t = REFRESH_TOKENS.c
        idle_since = func.coalesce(t.last_used_at, t.created_at)
        query = (
            select(REFRESH_TOKENS)
            .where(t.revoked_at.is_(None), idle_since < rows.us(before))
            .order_by(idle_since, t.id)
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return [rows.refresh_token(row) for row in conn.execute(query)]

    def save_refresh_token(self, token: RefreshToken) -> None:
        self._replace(
            REFRESH_TOKENS.c.id,
            rows.refresh_token_row(token),
            RefreshTokenNotFound(f"no refresh token {token.id}"),
        )

    # ---------------------------------------------------------------- apps and their connections

    def create_app(self, app: App) -> None:
        taken = AlreadyExists(f"app {app.app_id} already exists")
        with self._engine.begin() as conn, _on_integrity(taken):
            conn.execute(insert(APPS).values(rows.app_row(app)))

    def get_app(self, app_id: str) -> App | None:
        with self._reader.connect() as conn:
            row = conn.execute(select(APPS).where(APPS.c.app_id == app_id)).first()
        return None if row is None else rows.app(row)

    def list_apps(self, owners: Collection[str] | None = None) -> list[App]:
        query = select(APPS).order_by(APPS.c.created_at, APPS.c.app_id)
        if owners is not None:
            query = query.where(APPS.c.owner.in_(sorted(owners)))
        with self._reader.connect() as conn:
            return [rows.app(row) for row in conn.execute(query)]

    def save_app(self, app: App, *, expected_version: int) -> bool:
        key = APPS.c.app_id
        with self._engine.begin() as conn:
            swapped = conn.execute(
                update(APPS)
                .where(key == app.app_id, APPS.c.version == expected_version)
                .values(rows.app_row(app))
            ).rowcount
            if not swapped and conn.execute(select(key).where(key == app.app_id)).first() is None:
                raise AppNotFound(f"no app {app.app_id}")
        return bool(swapped)

    def delete_app(self, app_id: str) -> bool:
        with self._engine.begin() as conn:  # its connections' rows go with it (ON DELETE CASCADE)
            conn.execute(delete(APP_CONNECTIONS).where(APP_CONNECTIONS.c.app_id == app_id))
            return bool(conn.execute(delete(APPS).where(APPS.c.app_id == app_id)).rowcount)

    def add_connection(self, connection: models.Connection) -> bool:
        with self._engine.begin() as conn:
            self._connection_parents(conn, connection)
            try:
                with conn.begin_nested():
                    conn.execute(insert(APP_CONNECTIONS).values(rows.connection_row(connection)))
            except IntegrityError:
                self._connection_parents(conn, connection)  # deleted meanwhile: say which
                return False  # the primary key (app, tenant): connected already
        return True

    @staticmethod
    def _connection_parents(conn: Connection, connection: models.Connection) -> None:
        if conn.execute(select(APPS.c.app_id).where(APPS.c.app_id == connection.app_id)).first() is None:
            raise AppNotFound(f"no app {connection.app_id}")
        cid = REGISTRATIONS.c.client_id
        if conn.execute(select(cid).where(cid == connection.client_id)).first() is None:
            raise RegistrationNotFound(f"no registration {connection.client_id}")

    def list_connections(
        self, *, app_id: str | None = None, tenants: Collection[str] | None = None
    ) -> list[models.Connection]:
        c = APP_CONNECTIONS.c
        query = select(APP_CONNECTIONS).order_by(c.created_at, c.app_id, c.tenant)
        if app_id is not None:
            query = query.where(c.app_id == app_id)
        if tenants is not None:
            query = query.where(c.tenant.in_(sorted(tenants)))
        with self._reader.connect() as conn:
            return [rows.connection(row) for row in conn.execute(query)]

    def _replace(self, key: Column[str], row: dict[str, Any], missing: NotFound) -> None:
        """Overwrite the row whose ``key`` column matches ``row``; ``missing`` if there is none."""
        with self._engine.begin() as conn:
            if not conn.execute(update(key.table).where(key == row[key.name]).values(row)).rowcount:
                raise missing


def _new_head() -> dict[str, Any]:
    return {"epoch": secrets.token_hex(8), "seq": 0, "max_token_age": 0}


def _readable_revocation(row: Row[Any]) -> Revocation | None:
    """The entry of ``row``, or None (logged) when it cannot be read: one damaged row must not
    hide every later one."""
    try:
        return rows.revocation(row)
    except (ValueError, TypeError, KeyError):
        log.warning("embedauth: skipping unreadable revocation entry seq=%s", getattr(row, "seq", "?"))
        return None
