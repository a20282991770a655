"""One admin's reach: their tenants' registrations, the catalog, their own refresh tokens.

An :class:`Admin` is what an admin guard says of the caller (who, which tenants, whether they may
change the catalog); :class:`AdminScope` is everything that admin may do, made by
``auth.admin_scope(admin)``. The management API is a thin HTTP layer over it, and a product's own
admin UI can use it the same way. Every change goes to the ``embedauth_admin_action`` hook with
the admin's identity and the request's source, and to the audit trail, which the admin reads back
(their tenants' records only).

What a tenant admin can never learn: whether another tenant's registration exists (it is "not
found", as one that does not), which other tenants hold a permission, another admin's refresh
tokens.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from embedauth import validation
from embedauth.errors import Forbidden, InvalidInput, PermissionInUse, RefreshTokenNotFound
from embedauth.models import (
    Access,
    AuditRecord,
    CreatedRefreshToken,
    CustomerScope,
    Page,
    Permission,
    RefreshToken,
)
from embedauth.registry.apps import Apps, TenantApps
from embedauth.registry.audit import Audit
from embedauth.registry.permissions import Permissions
from embedauth.registry.refresh_tokens import RefreshTokens
from embedauth.registry.registrations import Registrations, TenantRegistrations

__all__ = ["Admin", "AdminScope"]

_NAMED = 5  # holders named when a permission cannot be removed


@dataclass(frozen=True, slots=True)
class Admin:
    """Who an admin guard let in.

    ``identity`` names them in the audit trail and owns their API refresh tokens (1-128 of
    ``A-Z a-z 0-9 . _ : @ -``); ``tenants`` are the tenants they manage (at least one);
    ``manages_catalog`` lets them add and remove permissions, which every tenant shares.
    """

    identity: str
    tenants: frozenset[str]
    manages_catalog: bool = False

    def __post_init__(self) -> None:
        validation.parse_identifier(self.identity, "an admin identity", field="identity")
        if not self.tenants:
            raise InvalidInput("an admin manages at least one tenant", field="tenants")
        for tenant in self.tenants:
            validation.parse_identifier(tenant, "tenant")


class AdminScope:
    """What ``admin`` may do. Registrations are :class:`TenantRegistrations` on their tenants, apps
    :class:`~embedauth.registry.apps.TenantApps` (those they own, and those they may connect)."""

    def __init__(
        self,
        admin: Admin,
        *,
        registrations: Registrations,
        permissions: Permissions,
        refresh_tokens: RefreshTokens,
        audit: Audit,
        source: str | None = None,
        apps: Apps,
    ) -> None:
        self.admin = admin
        self._every = registrations
        self.registrations: TenantRegistrations = registrations.for_tenants(
            admin.tenants, actor=admin.identity, source=source
        )
        self.apps: TenantApps = apps.for_tenants(admin.tenants, actor=admin.identity, source=source)
        self._permissions = permissions
        self._refresh_tokens = refresh_tokens
        self._audit_trail = audit
        self._source = source

    def _audit(self, action: str, tenant: str | None, target: str, **detail: Any) -> None:
        self._audit_trail.admin_action(
            actor=self.admin.identity,
            action=action,
            tenant=tenant,
            target=target,
            detail=detail,
            source=self._source,
        )

    # ------------------------------------------------------------------ the audit trail

    def audit(
        self,
        *,
        client_id: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        """The audit trail of the admin's tenants (or ``tenant``, one of them; another's is empty),
        newest first; ``client_id``'s only, if given (another tenant's: nothing)."""
        tenants = self.admin.tenants if tenant is None else self.admin.tenants & {tenant}
        return self._audit_trail.list(tenants, client_id=client_id, since=since, offset=offset, limit=limit)

    def registration_audit(
        self, client_id: str, *, since: datetime | None = None, offset: int = 0, limit: int = 50
    ) -> Page[AuditRecord]:
        """One registration's trail (the notices sent to it included), newest first.

        ``RegistrationNotFound`` when it is neither a registration of the admin's tenants nor has
        a record in them: another tenant's is "not found", as one that does not exist, while a
        deleted one of theirs keeps its trail.
        """
        page = self.audit(client_id=client_id, since=since, offset=offset, limit=limit)
        if page.total == 0:
            self.registrations.get(client_id)  # raises when it is not theirs
        return page

    # ------------------------------------------------------------------ the catalog

    def permissions(self, contains: str | None = None) -> builtins.list[Permission]:
        """The catalog (every admin reads it: it is what their registrations may hold)."""
        return self._permissions.list(contains)

    def _catalog_admin(self) -> None:
        if not self.admin.manages_catalog:
            raise Forbidden("changing the permission catalog needs a catalog admin")

    def add_permission(
        self, name: str, *, description: str | None = None, access: Access | str = Access.READ
    ) -> Permission:
        """Add a permission to the catalog (catalog admins only)."""
        self._catalog_admin()
        permission = self._permissions.add(name, description=description, access=access)
        self._audit("permission.add", None, permission.name, access=permission.access.value)
        return permission

    def remove_permission(self, name: str) -> None:
        """Remove a permission no registration holds (catalog admins only).

        While it is held, :class:`~embedauth.errors.PermissionInUse` names only the holders in this
        admin's tenants, and counts the others.
        """
        self._catalog_admin()
        try:
            self._permissions.remove(name)
        except PermissionInUse:
            everywhere = self._every.list(None, holding=name, limit=1).total
            mine = self.registrations.list(holding=name, limit=_NAMED)
            named = "".join(f", {r.client_id} ({r.name})" for r in mine.items)
            elsewhere = everywhere - mine.total
            raise PermissionInUse(
                f"permission {name!r} is held by {everywhere} registration(s){named}"
                + (f" ({mine.total - len(mine.items)} more of yours)" if mine.total > len(mine.items) else "")
                + (f" ({elsewhere} in other tenants)" if elsewhere else "")
                + "; take it away from them first"
            ) from None
        self._audit("permission.remove", None, name)

    # ------------------------------------------------------------------ their own refresh tokens

    def refresh_tokens(self) -> builtins.list[RefreshToken]:
        """The admin's own refresh tokens (revoked ones too), never their values."""
        return self._refresh_tokens.list(self.admin.identity)

    def create_refresh_token(
        self,
        *,
        scopes: Iterable[str] | str | None = None,
        tenant: str | None = None,
        customer_scope: CustomerScope | str | None = None,
    ) -> CreatedRefreshToken:
        """A refresh token of the admin's own, for one of their tenants (their only one by default)."""
        if tenant is None and len(self.admin.tenants) == 1:
            (tenant,) = self.admin.tenants
        if tenant is None or tenant not in self.admin.tenants:
            raise InvalidInput("name one of the tenants you manage", field="tenant")
        created = self._refresh_tokens.create(
            self.admin.identity, scopes=scopes, tenant=tenant, customer_scope=customer_scope
        )
        self._audit("refresh_token.create", tenant, created.record.id, scopes=list(created.record.scopes))
        return created

    def revoke_refresh_token(self, token_id: str) -> RefreshToken:
        """Revoke one of the admin's own refresh tokens (another's is not found)."""
        record = self._refresh_tokens.get(token_id)
        if record.user != self.admin.identity:
            raise RefreshTokenNotFound(f"no refresh token {token_id!r}")
        revoked = self._refresh_tokens.revoke(token_id)
        self._audit("refresh_token.revoke", revoked.tenant, revoked.id)
        return revoked
