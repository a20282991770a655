"""Hook specifications (pluggy): events to observe, extra token claims, storage schemes.

Hooks observe and extend; they never replace a security check. Every :class:`~embedauth.EmbedAuth`
has its own plugin manager (no global state); the built-in storage schemes are themselves a plugin
on it. Setuptools entry points (group ``embedauth``) are loaded only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from embedauth.models import AuditRecord, CertificateCredential, Registration, SecretCredential
    from embedauth.storage.base import StorageFactory

__all__ = ["PROJECT", "hookimpl", "hookspec", "make_plugin_manager"]

PROJECT = "embedauth"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Specs:
    """The hooks a plugin may implement (each by a function of the same name)."""

    @hookspec
    def embedauth_storage_schemes(self) -> Mapping[str, StorageFactory]:
        """Return URL schemes (``"redis"``, ``"postgresql+psycopg"``) mapped to backend factories."""
        raise NotImplementedError

    @hookspec
    def embedauth_permission_added(self, name: str) -> None:
        """A permission was added to the catalog."""

    @hookspec
    def embedauth_permission_removed(self, name: str) -> None:
        """A permission was removed from the catalog."""

    @hookspec
    def embedauth_registration_created(self, registration: Registration) -> None:
        """A registration was created (its first secret with it)."""

    @hookspec
    def embedauth_registration_updated(self, registration: Registration, action: str) -> None:
        """A registration changed; ``action`` names the change (``edit``, ``disable``, ``enable``,
        ``renew``, ``add_secret``, ``delete_secret``, ``add_certificate``, ``remove_certificate``)."""

    @hookspec
    def embedauth_registration_deleted(self, client_id: str, tenant: str) -> None:
        """A registration was deleted."""

    @hookspec
    def embedauth_secret_rotated(self, registration: Registration, credential: SecretCredential) -> None:
        """A new secret replaced every earlier one; ``credential`` is the new one (no plaintext)."""

    @hookspec
    def embedauth_admin_action(
        self,
        actor: str,
        action: str,
        tenant: str | None,
        target: str | None,
        detail: Mapping[str, Any],
        source: str | None,
    ) -> None:
        """An admin changed something, through the management API, a tenant-bound handle or the command.

        ``actor`` is who (the admin guard's identity, ``cli:USER``), ``action`` what
        (``registration.create``, ``registration.disable``, ``permission.add``,
        ``refresh_token.revoke``…), ``tenant`` and ``target`` (a client ID, permission name or
        refresh token id) what it concerned, ``detail`` a few facts that are never secret (the
        fields edited, a secret's id), and ``source`` from where (the remote address, ``cli``;
        None when unknown). The same event is stored in the audit trail.
        """

    @hookspec
    def embedauth_audit_record(self, record: AuditRecord) -> None:
        """An audit record was written (admin actions, tokens issued and refused, notices): for an
        external sink. Called from the audit writer's thread, never on a request's path."""

    @hookspec
    def embedauth_credential_expiring(
        self,
        registration: Registration,
        credential: SecretCredential | CertificateCredential | None,
        days_left: int,
        expires_at: datetime,
    ) -> None:
        """The expiry sweep found a credential (None: the registration's own expiry) within 30 or
        7 days of ``expires_at``; ``days_left`` is the whole days left, rounded up. Once per
        deployment, credential and threshold (see docs/lifecycle.md)."""

    @hookspec
    def embedauth_credential_expired(
        self,
        registration: Registration,
        credential: SecretCredential | CertificateCredential | None,
        expires_at: datetime,
    ) -> None:
        """The expiry sweep found a credential (None: the registration itself) expired at
        ``expires_at``; once per deployment and credential."""

    @hookspec
    def embedauth_token_issued(
        self,
        client_id: str | None,
        subject: str,
        token_id: str,
        scopes: tuple[str, ...],
        expires_at: datetime,
    ) -> None:
        """An access token was issued."""

    @hookspec
    def embedauth_token_denied(self, client_id: str | None, reason: str) -> None:
        """A token request or a token was refused; ``reason`` is for the audit log only."""

    @hookspec
    def embedauth_extra_claims(
        self, subject: str, client_id: str | None, scopes: tuple[str, ...]
    ) -> Mapping[str, Any] | None:
        """Extra claims for an access token; registered claims cannot be overridden."""


def make_plugin_manager(*plugins: object, load_entrypoints: bool = False) -> pluggy.PluginManager:
    """A fresh manager with the specs, the built-in plugins, then ``plugins``."""
    from embedauth.plugins import log
    from embedauth.storage import schemes

    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(Specs)
    manager.register(schemes, name="embedauth.storage.schemes")
    manager.register(log, name="embedauth.plugins.log")
    for plugin in plugins:
        manager.register(plugin)
    if load_entrypoints:
        manager.load_setuptools_entrypoints(PROJECT)
    return manager
