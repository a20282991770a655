"""``memory://``: everything in this process, under one lock. For tests and single-process demos.

The reference backend: the simplest reading of the contract in ``base.py``.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Collection, Sequence
from datetime import datetime

from embedauth.clock import Clock, from_timestamp
from embedauth.errors import (
    AlreadyExists,
    AppNotFound,
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
    Connection,
    Page,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    RevocationHead,
    RevocationKind,
    SigningKey,
)
from embedauth.storage.base import (
    DEFAULT_TIMEOUT,
    RegistrationSort,
    Storage,
    audit_page,
    registration_page,
)

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """The ``memory://`` backend: dictionaries under one re-entrant lock."""

    def __init__(self, url: str, *, clock: Clock, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(url, clock=clock, timeout=timeout)
        self._lock = threading.RLock()
        self._permissions: dict[str, Permission] = {}
        self._registrations: dict[str, Registration] = {}
        self._once: dict[str, datetime] = {}
        self._revocations: dict[tuple[RevocationKind, str], Revocation] = {}
        self._seq = 0
        self._epoch = secrets.token_hex(8)
        self._max_token_age = 0
        self._keys: dict[str, SigningKey] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._audit: dict[str, AuditRecord] = {}
        self._apps: dict[str, App] = {}
        self._connections: dict[tuple[str, str], Connection] = {}

    def _now(self) -> datetime:
        return from_timestamp(self.clock())

    # ---------------------------------------------------------------- permission catalog

    def add_permission(self, permission: Permission) -> None:
        with self._lock:
            if permission.name in self._permissions:
                raise AlreadyExists(f"permission {permission.name!r} already exists")
            self._permissions[permission.name] = permission

    def get_permission(self, name: str) -> Permission | None:
        return self._permissions.get(name)

    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        with self._lock:
            found = list(self._permissions.values())
        if contains:
            needle = contains.lower()
            found = [p for p in found if needle in p.name.lower() or needle in p.description.lower()]
        return sorted(found, key=lambda p: p.name)

    def remove_permission(self, name: str) -> None:
        with self._lock:
            if name not in self._permissions:
                raise PermissionNotFound(f"no permission {name!r}")
            holders = sum(1 for r in self._registrations.values() if name in r.scopes)
            if holders:
                raise PermissionInUse(f"permission {name!r} is held by {holders} registration(s)")
            del self._permissions[name]

    # ---------------------------------------------------------------- registrations

    def _check_scopes(self, scopes: Sequence[str]) -> None:
        missing = sorted(set(scopes) - self._permissions.keys())
        if missing:
            raise UnknownPermission(f"not in the permission catalog: {', '.join(missing)}")

    def create_registration(self, registration: Registration) -> None:
        with self._lock:
            if registration.client_id in self._registrations:
                raise AlreadyExists(f"registration {registration.client_id} already exists")
            self._check_scopes(registration.scopes)
            self._registrations[registration.client_id] = registration

    def get_registration(self, client_id: str) -> Registration | None:
        return self._registrations.get(client_id)

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
        with self._lock:
            stored = list(self._registrations.values())
        return registration_page(
            stored,
            tenant,
            name_contains=name_contains,
            holding=holding,
            expires_before=expires_before,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        with self._lock:
            stored = self._registrations.get(registration.client_id)
            if stored is None:
                raise RegistrationNotFound(f"no registration {registration.client_id}")
            if stored.version != expected_version:
                return False
            self._check_scopes(registration.scopes)
            used = {c.id: c.last_used_at for c in stored.credentials()}
            self._registrations[registration.client_id] = dataclasses.replace(
                registration,
                last_used_at=stored.last_used_at,
                secrets=tuple(
                    dataclasses.replace(s, last_used_at=used.get(s.id)) for s in registration.secrets
                ),
                certificates=tuple(
                    dataclasses.replace(c, last_used_at=used.get(c.id)) for c in registration.certificates
                ),
            )
            return True

    def record_use(self, client_id: str, at: datetime, *, credential_id: str | None = None) -> None:
        def later(moment: datetime | None) -> datetime:
            return at if moment is None or moment < at else moment

        with self._lock:
            stored = self._registrations.get(client_id)
            if stored is None:
                return
            self._registrations[client_id] = dataclasses.replace(
                stored,
                last_used_at=later(stored.last_used_at),
                secrets=tuple(
                    dataclasses.replace(s, last_used_at=later(s.last_used_at)) if s.id == credential_id else s
                    for s in stored.secrets
                ),
                certificates=tuple(
                    dataclasses.replace(c, last_used_at=later(c.last_used_at)) if c.id == credential_id else c
                    for c in stored.certificates
                ),
            )

    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        with self._lock:
            deleted = [cid for cid in client_ids if self._registrations.pop(cid, None) is not None]
            gone = set(deleted)
            for key in [k for k, c in self._connections.items() if c.client_id in gone]:
                del self._connections[key]
            return deleted

    # ---------------------------------------------------------------- one-time keys

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        now = self._now()
        with self._lock:
            for stale in [k for k, until in self._once.items() if until <= now]:
                del self._once[stale]
            if key in self._once:
                return False
            self._once[key] = expires_at
            return True

    # ---------------------------------------------------------------- revocations

    def add_revocation(self, revocation: Revocation) -> int:
        with self._lock:
            self._seq += 1
            key = (revocation.kind, revocation.subject)
            known = self._revocations.pop(key, None)  # re-inserted last: the dict stays in seq order
            merged = revocation if known is None else known.merged(revocation)
            self._revocations[key] = dataclasses.replace(merged, seq=self._seq)
            return self._seq

    def revocations_after(self, seq: int) -> list[Revocation]:
        now = self._now()
        with self._lock:
            for key in [k for k, r in self._revocations.items() if r.expires_at <= now]:
                del self._revocations[key]
            return [r for r in self._revocations.values() if r.seq > seq]

    def revocation_head(self) -> RevocationHead:
        with self._lock:
            return RevocationHead(self._epoch, self._seq, self._max_token_age)

    def raise_max_token_age(self, seconds: int) -> int:
        with self._lock:
            self._max_token_age = max(self._max_token_age, seconds)
            return self._max_token_age

    def ping(self) -> None:
        return None

    # ---------------------------------------------------------------- the audit trail

    def add_audit_records(self, records: Sequence[AuditRecord]) -> None:
        with self._lock:
            for record in records:
                self._audit.setdefault(record.id, record)

    def list_audit_records(
        self,
        tenant: str | Collection[str] | None,
        *,
        client_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        with self._lock:
            stored = list(self._audit.values())
        return audit_page(stored, tenant, client_id=client_id, since=since, offset=offset, limit=limit)

    def prune_audit_records(self, *, before: datetime, keep: int) -> int:
        with self._lock:
            newest = sorted(self._audit.values(), key=lambda r: (r.at, r.id), reverse=True)
            gone = [r.id for i, r in enumerate(newest) if r.at < before or i >= keep]
            for record_id in gone:
                del self._audit[record_id]
            return len(gone)

    # ---------------------------------------------------------------- signing keys

    def add_signing_key(self, key: SigningKey) -> None:
        with self._lock:
            if key.kid in self._keys:
                raise AlreadyExists(f"signing key {key.kid} already exists")
            self._keys[key.kid] = key

    def list_signing_keys(self) -> list[SigningKey]:
        with self._lock:
            return sorted(self._keys.values(), key=lambda k: (k.created_at, k.kid))

    def save_signing_key(self, key: SigningKey) -> None:
        with self._lock:
            if key.kid not in self._keys:
                raise NotFound(f"no signing key {key.kid}")
            self._keys[key.kid] = key

    def delete_signing_key(self, kid: str) -> None:
        with self._lock:
            self._keys.pop(kid, None)

    # ---------------------------------------------------------------- refresh tokens

    def add_refresh_token(self, token: RefreshToken) -> None:
        with self._lock:
            if token.id in self._refresh:
                raise AlreadyExists(f"refresh token {token.id} already exists")
            self._refresh[token.id] = token

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        return self._refresh.get(token_id)

    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        with self._lock:
            found = [t for t in self._refresh.values() if t.user == user]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def record_refresh_token_use(self, token_id: str, at: datetime) -> None:
        with self._lock:
            stored = self._refresh.get(token_id)
            if stored is not None and (stored.last_used_at is None or stored.last_used_at < at):
                self._refresh[token_id] = dataclasses.replace(stored, last_used_at=at)

    def idle_refresh_tokens(self, before: datetime, *, limit: int = 500) -> list[RefreshToken]:
        with self._lock:
            idle = [t for t in self._refresh.values() if t.revoked_at is None and t.idle_since() < before]
        return sorted(idle, key=lambda t: (t.idle_since(), t.id))[:limit]

    def save_refresh_token(self, token: RefreshToken) -> None:
        with self._lock:
            if token.id not in self._refresh:
                raise RefreshTokenNotFound(f"no refresh token {token.id}")
            self._refresh[token.id] = token

    # ---------------------------------------------------------------- apps and their connections

    def create_app(self, app: App) -> None:
        with self._lock:
            if app.app_id in self._apps:
                raise AlreadyExists(f"app {app.app_id} already exists")
            self._apps[app.app_id] = app

    def get_app(self, app_id: str) -> App | None:
        return self._apps.get(app_id)

    def list_apps(self, owners: Collection[str] | None = None) -> list[App]:
        with self._lock:
            found = [a for a in self._apps.values() if owners is None or a.owner in owners]
        return sorted(found, key=lambda a: (a.created_at, a.app_id))

    def save_app(self, app: App, *, expected_version: int) -> bool:
        with self._lock:
            stored = self._apps.get(app.app_id)
            if stored is None:
                raise AppNotFound(f"no app {app.app_id}")
            if stored.version != expected_version:
                return False
            self._apps[app.app_id] = app
            return True

    def delete_app(self, app_id: str) -> bool:
        with self._lock:
            for key in [k for k in self._connections if k[0] == app_id]:
                del self._connections[key]
            return self._apps.pop(app_id, None) is not None

    def add_connection(self, connection: Connection) -> bool:
        with self._lock:
            if connection.app_id not in self._apps:
                raise AppNotFound(f"no app {connection.app_id}")
            if connection.client_id not in self._registrations:
                raise RegistrationNotFound(f"no registration {connection.client_id}")
            key = (connection.app_id, connection.tenant)
            if key in self._connections:
                return False
            self._connections[key] = connection
            return True

    def list_connections(
        self, *, app_id: str | None = None, tenants: Collection[str] | None = None
    ) -> list[Connection]:
        with self._lock:
            found = [
                c
                for c in self._connections.values()
                if (app_id is None or c.app_id == app_id) and (tenants is None or c.tenant in tenants)
            ]
        return sorted(found, key=lambda c: (c.created_at, c.app_id, c.tenant))
