"""Multi-tenant apps: an app a developer defines once, and each tenant's connection of it.

An :class:`~embedauth.models.App` names the permissions it requests and the tenants that may
connect it. A tenant's admin connects it by allowing some or all of those permissions; the
connection is an ordinary registration of that tenant (its own client ID and secret, shown once),
so N tenants hold N credential pairs, each pausable, rotatable and deletable by its tenant alone.
The developer sees which tenants connected and with which permissions, never their secrets.

The app stays the bound on every connection: narrowing the permissions it requests narrows every
connection at once (their tokens with the old rights stop verifying), and a tenant taken off
``allowed_tenants`` has its connection paused.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from embedauth import validation
from embedauth.clock import Clock, utcnow
from embedauth.credentials.secrets import new_id
from embedauth.errors import AppNotFound, Conflict, InvalidInput, RegistrationNotFound, UnknownPermission
from embedauth.models import App, Connection, CreatedSecret, Registration
from embedauth.registry.audit import Audit
from embedauth.registry.registrations import Registrations
from embedauth.storage.base import Storage

__all__ = ["AppConnection", "Apps", "Connected", "TenantApps"]

_CAS_ATTEMPTS: Final = 50
MAX_ALLOWED_TENANTS: Final = 1000


class _Unset:
    pass


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class AppConnection:
    """A connection with its registration as it is now: the tenant, the permissions it allowed,
    whether it is paused, when it was last used."""

    connection: Connection
    registration: Registration


@dataclass(frozen=True, slots=True)
class Connected:
    """A new connection and its registration's first secret (shown only here)."""

    app: App
    connection: Connection
    created: CreatedSecret


def _allowed_tenants(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidInput("allowed_tenants is a list of tenants, or null for any", field="allowed_tenants")
    tenants = tuple(
        sorted({validation.parse_identifier(t, "tenant", field="allowed_tenants") for t in value})
    )
    if len(tenants) > MAX_ALLOWED_TENANTS:
        raise InvalidInput(f"at most {MAX_ALLOWED_TENANTS} allowed tenants", field="allowed_tenants")
    return tenants


class Apps:
    """Every app of the deployment (``auth.apps``); :meth:`for_tenants` is one admin's reach."""

    def __init__(self, storage: Storage, clock: Clock, registrations: Registrations, audit: Audit) -> None:
        self._storage = storage
        self._clock = clock
        self._registrations = registrations
        self._audit_trail = audit

    def for_tenants(
        self, tenants: Iterable[str] | None, *, actor: str, source: str | None = None
    ) -> TenantApps:
        """The apps these tenants own and may connect, each change reported with ``actor`` and
        ``source`` (to the ``embedauth_admin_action`` hook and the audit trail)."""
        return TenantApps(self, tenants, actor=actor, audit=self._audit_trail, source=source)

    def _check_scopes(self, scopes: tuple[str, ...]) -> None:
        for scope in scopes:
            if self._storage.get_permission(scope) is None:
                raise UnknownPermission(f"no permission {scope!r} in the catalog")

    # ------------------------------------------------------------------ the developer's side

    def create(
        self,
        *,
        owner: str,
        name: str,
        description: str | None = None,
        scopes: Iterable[str] | str | None = None,
        allowed_tenants: Iterable[str] | None = None,
    ) -> App:
        """A new app of the ``owner`` tenant, requesting ``scopes``; ``allowed_tenants`` may connect
        it (``None``: any tenant)."""
        now = utcnow(self._clock)
        app = App(
            app_id=new_id(),
            owner=validation.parse_identifier(owner, "tenant"),
            name=validation.parse_name(name),
            description=validation.parse_description(description),
            scopes=validation.parse_scopes(scopes),
            allowed_tenants=_allowed_tenants(allowed_tenants),
            created_at=now,
            updated_at=now,
        )
        self._check_scopes(app.scopes)
        self._storage.create_app(app)
        return app

    def get(self, app_id: str) -> App:
        """The app, or :class:`~embedauth.errors.AppNotFound`."""
        app = self._storage.get_app(app_id) if isinstance(app_id, str) and app_id else None
        if app is None:
            raise AppNotFound(f"no app {app_id!r}")
        return app

    def list(self, owners: Collection[str] | None = None) -> builtins.list[App]:
        """The apps these tenants own (every app: ``None``), oldest first."""
        return self._storage.list_apps(None if owners is None else frozenset(owners))

    def update(
        self,
        app_id: str,
        *,
        name: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        scopes: Iterable[str] | str | _Unset | None = UNSET,
        allowed_tenants: Iterable[str] | _Unset | None = UNSET,
    ) -> App:
        """Change the app; omitted fields stay. Narrowed ``scopes`` narrow every connection at once;
        a tenant no longer in ``allowed_tenants`` has its connection paused."""
        changes: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            changes["name"] = validation.parse_name(name)
        if not isinstance(description, _Unset):
            changes["description"] = validation.parse_description(description)
        if not isinstance(scopes, _Unset):
            changes["scopes"] = validation.parse_scopes(scopes)
            self._check_scopes(changes["scopes"])
        if not isinstance(allowed_tenants, _Unset):
            changes["allowed_tenants"] = _allowed_tenants(allowed_tenants)
        for _ in range(_CAS_ATTEMPTS):
            current = self.get(app_id)
            changed = dataclasses.replace(
                current,
                **changes,
                version=current.version + 1,
                updated_at=max(utcnow(self._clock), current.updated_at),
            )
            if self._storage.save_app(changed, expected_version=current.version):
                break
        else:
            raise Conflict(f"app {app_id} kept changing; try again")
        self._bound_connections(changed)
        return changed

    def _bound_connections(self, app: App) -> None:
        """Bring every connection within the app's requests and allowed tenants."""
        for link in self.connections(app.app_id):
            registration, tenant = link.registration, link.connection.tenant
            try:
                if not set(registration.scopes) <= set(app.scopes):
                    kept = [s for s in registration.scopes if s in app.scopes]
                    registration = self._registrations.update(registration.client_id, scopes=kept)
                if registration.enabled and not app.may_connect(tenant):
                    self._registrations.disable(registration.client_id)
            except RegistrationNotFound:
                continue  # deleted meanwhile: nothing left to bound

    def delete(self, app_id: str) -> builtins.list[str]:
        """Delete the app and every connection's registration (their tokens stop working); the
        client IDs deleted."""
        app = self.get(app_id)
        client_ids = [link.connection.client_id for link in self.connections(app.app_id)]
        deleted = self._registrations.delete_many(client_ids)
        self._storage.delete_app(app.app_id)
        return deleted

    def connections(
        self, app_id: str | None = None, tenants: Collection[str] | None = None
    ) -> builtins.list[AppConnection]:
        """The connections of ``app_id`` (any app: ``None``) in these tenants (any: ``None``), each
        with its registration as it is now."""
        links = self._storage.list_connections(
            app_id=app_id, tenants=None if tenants is None else frozenset(tenants)
        )
        found = []
        for connection in links:
            try:
                found.append(AppConnection(connection, self._registrations.get(connection.client_id)))
            except RegistrationNotFound:
                continue  # deleted between the two reads
        return found

    # ------------------------------------------------------------------ the connecting tenant's side

    def connectable(self, tenants: Collection[str] | None = None) -> builtins.list[App]:
        """The apps any of these tenants may connect (every app: ``None``)."""
        apps = self._storage.list_apps(None)
        return [a for a in apps if tenants is None or any(a.may_connect(t) for t in tenants)]

    def connect(
        self,
        app_id: str,
        *,
        tenant: str,
        connected_by: str,
        scopes: Iterable[str] | str | None = None,
        secret_days: int | None = None,
        secret_expires_at: datetime | None = None,
    ) -> Connected:
        """Connect the app for ``tenant``, allowing ``scopes`` (some or all of those it requests;
        ``None``: all): a registration of the tenant and its first secret. A tenant connects an app
        once; :class:`~embedauth.errors.Conflict` while its connection exists."""
        app = self.get(app_id)
        if not app.may_connect(tenant):
            raise AppNotFound(f"no app {app_id!r}")
        allowed = app.scopes if scopes is None else validation.parse_scopes(scopes)
        if extra := sorted(set(allowed) - set(app.scopes)):
            raise InvalidInput(f"the app does not request {', '.join(extra)}", field="scopes")
        if self._storage.list_connections(app_id=app.app_id, tenants=frozenset({tenant})):
            raise Conflict(f"tenant {tenant!r} has connected this app already; delete that connection first")
        created = self._registrations.create(
            tenant=tenant,
            name=app.name,
            description=app.description,
            scopes=allowed,
            secret_days=secret_days,
            secret_expires_at=secret_expires_at,
        )
        connection = Connection(
            app_id=app.app_id,
            tenant=created.registration.tenant,
            client_id=created.client_id,
            connected_by=connected_by,
            created_at=created.registration.created_at,
        )
        if not self._storage.add_connection(connection):  # another admin connected it meanwhile
            self._registrations.delete(created.client_id)
            raise Conflict(f"tenant {tenant!r} has connected this app already; delete that connection first")
        return Connected(app, connection, created)


class TenantApps:
    """:class:`Apps` as one admin sees them: the apps their tenants own (to define, change and
    follow), the apps their tenants may connect, and their tenants' connections. Another tenant's
    app is "not found", as one that does not exist."""

    def __init__(
        self,
        apps: Apps,
        tenants: Iterable[str] | None,
        *,
        actor: str,
        audit: Audit,
        source: str | None = None,
    ) -> None:
        self._all = apps
        self.tenants = validation.parse_tenants(tenants)
        self.actor = validation.parse_actor(actor)
        self._audit_trail = audit
        self._source = source

    def _mine(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def _audit(self, action: str, tenant: str, target: str, **detail: Any) -> None:
        client_id = detail.get("client_id")
        self._audit_trail.admin_action(
            actor=self.actor,
            action=f"app.{action}",
            tenant=tenant,
            target=target,
            detail=detail,
            source=self._source,
            client_id=client_id if isinstance(client_id, str) else None,
        )

    def _own(self, app_id: str) -> App:
        app = self._all.get(app_id)
        if not self._mine(app.owner):
            raise AppNotFound(f"no app {app_id!r}")
        return app

    def _tenant(self, tenant: str | None) -> str:
        if tenant is None and self.tenants is not None and len(self.tenants) == 1:
            (tenant,) = self.tenants
        if tenant is None or not self._mine(tenant):
            raise InvalidInput("name one of the tenants you manage", field="tenant")
        return tenant

    # ------------------------------------------------------------------ as the developer

    def list(self) -> builtins.list[App]:
        """The apps these tenants own."""
        return self._all.list(self.tenants)

    def get(self, app_id: str) -> App:
        """One of these tenants' apps."""
        return self._own(app_id)

    def create(self, *, owner: str | None = None, **options: Any) -> App:
        """As :meth:`Apps.create`, owned by one of these tenants (their only one by default)."""
        try:
            owner = self._tenant(owner)
        except InvalidInput:
            raise InvalidInput("the owner is one of the tenants you manage", field="owner") from None
        app = self._all.create(owner=owner, **options)
        self._audit("create", app.owner, app.app_id, scopes=builtins.list(app.scopes))
        return app

    def update(self, app_id: str, **changes: Any) -> App:
        """As :meth:`Apps.update`."""
        self._own(app_id)
        app = self._all.update(app_id, **changes)
        self._audit("update", app.owner, app.app_id, fields=sorted(changes))
        return app

    def delete(self, app_id: str) -> builtins.list[str]:
        """As :meth:`Apps.delete`."""
        app = self._own(app_id)
        deleted = self._all.delete(app_id)
        self._audit("delete", app.owner, app.app_id, connections=len(deleted))
        return deleted

    def connections(self, app_id: str) -> builtins.list[AppConnection]:
        """Every tenant's connection of one of these tenants' apps (never their secrets)."""
        return self._all.connections(self._own(app_id).app_id)

    # ------------------------------------------------------------------ as the connecting tenant

    def connectable(self) -> builtins.list[App]:
        """The apps any of these tenants may connect."""
        return self._all.connectable(self.tenants)

    def connect(self, app_id: str, *, tenant: str | None = None, **options: Any) -> Connected:
        """As :meth:`Apps.connect`, for one of these tenants (their only one by default)."""
        tenant = self._tenant(tenant)
        connected = self._all.connect(app_id, tenant=tenant, connected_by=self.actor, **options)
        self._audit(
            "connect",
            tenant,
            app_id,
            client_id=connected.created.client_id,
            scopes=builtins.list(connected.created.registration.scopes),
        )
        return connected

    def my_connections(self) -> builtins.list[AppConnection]:
        """These tenants' connections, of any app."""
        return self._all.connections(None, self.tenants)
