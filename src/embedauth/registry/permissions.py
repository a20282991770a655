"""The permission catalog: the scopes a registration may be given, each described for admins."""

from __future__ import annotations

import pluggy

from embedauth import validation
from embedauth.clock import Clock, utcnow
from embedauth.errors import InvalidInput, PermissionInUse, PermissionNotFound
from embedauth.models import Access, Permission
from embedauth.storage.base import Storage

__all__ = ["Permissions"]

#: How many holders a refused removal names.
_NAMED = 10


class Permissions:
    """``auth.permissions``: add, list, filter and remove catalog entries."""

    def __init__(self, storage: Storage, clock: Clock, plugins: pluggy.PluginManager) -> None:
        self._storage = storage
        self._clock = clock
        self._hook = plugins.hook

    def add(
        self, name: str, *, description: str | None = None, access: Access | str = Access.READ
    ) -> Permission:
        """Add ``name`` (an OAuth scope token such as ``devices:read``); AlreadyExists if taken."""
        try:
            kind = Access(access)
        except ValueError:
            raise InvalidInput(f"access must be 'read' or 'write'; got {access!r}", field="access") from None
        permission = Permission(
            name=validation.parse_permission_name(name),
            description=validation.parse_description(description),
            access=kind,
            created_at=utcnow(self._clock),
        )
        self._storage.add_permission(permission)
        self._hook.embedauth_permission_added(name=permission.name)
        return permission

    def get(self, name: str) -> Permission:
        """The permission named ``name``, or :class:`~embedauth.errors.PermissionNotFound`."""
        try:
            permission = self._storage.get_permission(validation.parse_permission_name(name))
        except InvalidInput:
            permission = None
        if permission is None:
            raise PermissionNotFound(f"no permission {name!r}")
        return permission

    def list(self, contains: str | None = None) -> list[Permission]:
        """Every permission, or those whose name or description contains the text."""
        return self._storage.list_permissions(contains=validation.parse_search(contains, field="contains"))

    def remove(self, name: str) -> None:
        """Remove it; ``PermissionInUse``, naming the first holders, while any registration holds it."""
        name = validation.parse_permission_name(name)
        try:
            self._storage.remove_permission(name)
        except PermissionInUse:
            holders = self._storage.list_registrations(None, holding=name, limit=_NAMED)
            named = ", ".join(f"{r.client_id} ({r.name}, tenant {r.tenant})" for r in holders.items)
            more = (
                f" and {holders.total - len(holders.items)} more"
                if holders.total > len(holders.items)
                else ""
            )
            raise PermissionInUse(
                f"permission {name!r} is held by {holders.total} registration(s): {named}{more}; "
                "take it away from them first (registrations update CLIENT_ID --scope ...)"
            ) from None
        self._hook.embedauth_permission_removed(name=name)
