"""A person's API refresh tokens: created for a user id, shown once, exchanged for access tokens.

A refresh token is ``ear_`` + its id + 256 random bits + a checksum (see :mod:`embedauth.credentials.secrets`):
the id finds the stored argon2id hash, the checksum refuses a mistyped token before any lookup. A
token may be limited to some permissions of the catalog (unlimited: every permission in the
catalog at the time of the exchange). It is revoked at will, and automatically once it has gone
``refresh_token_idle_days`` unused; revoking it also revokes every access token it produced.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

import pluggy

from embedauth import validation
from embedauth.clock import Clock, utcnow
from embedauth.config import Settings
from embedauth.credentials.secrets import (
    SecretCache,
    SecretHasher,
    generate_refresh_token,
    hint,
    match_secret,
    parse_refresh_token,
)
from embedauth.credentials.throttle import AuthThrottle
from embedauth.errors import InvalidGrant, InvalidSecret, RefreshTokenNotFound, UnknownPermission
from embedauth.models import Access, CreatedRefreshToken, CustomerScope, RefreshToken, RevocationKind
from embedauth.registry.last_used import UseWriter
from embedauth.storage.base import Storage
from embedauth.tokens.revocation import RevocationState

__all__ = ["RefreshTokens"]


class RefreshTokens:
    """``auth.refresh_tokens``: create, list, revoke; ``use`` is the refresh_token grant's check."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        hasher: SecretHasher,
        cache: SecretCache,
        plugins: pluggy.PluginManager,
        revocations: RevocationState,
        throttle: AuthThrottle,
        uses: UseWriter,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._hasher = hasher
        self._cache = cache
        self._hook = plugins.hook
        self._revocations = revocations
        self._throttle = throttle
        self._uses = uses

    def create(
        self,
        user: str,
        *,
        scopes: Iterable[str] | str | None = None,
        tenant: str | None = None,
        customer_scope: CustomerScope | str | None = None,
    ) -> CreatedRefreshToken:
        """A new refresh token for ``user``: the only time its value is visible.

        It grants exactly ``scopes``; without them, the catalog's *read* permissions as they are
        now (never a write one, and the set does not grow with the catalog). Its access tokens name
        ``tenant`` and carry ``customer_scope`` (default ``all``). Without a tenant they name none:
        an API must then treat the caller as belonging to no tenant.
        """
        user = validation.parse_identifier(user, "user")
        if scopes is None:
            scope_names = tuple(p.name for p in self._storage.list_permissions() if p.access is Access.READ)
        else:
            scope_names = validation.parse_scopes(scopes)
        missing = [name for name in scope_names if self._storage.get_permission(name) is None]
        if missing:
            raise UnknownPermission(f"not in the permission catalog: {', '.join(missing)}")
        token_id, token = generate_refresh_token()
        record = RefreshToken(
            id=token_id,
            user=user,
            scopes=scope_names,
            hint=hint(token),
            token_hash=self._hasher.hash(token),
            created_at=utcnow(self._clock),
            tenant=None if tenant is None else validation.parse_identifier(tenant, "tenant"),
            customer_scope=validation.parse_customer_scope(customer_scope),
        )
        self._storage.add_refresh_token(record)
        return CreatedRefreshToken(record, token)

    def list(self, user: str) -> builtins.list[RefreshToken]:
        """The user's refresh tokens, revoked ones included, without their values."""
        return self._storage.list_refresh_tokens(validation.parse_identifier(user, "user"))

    def get(self, token_id: str) -> RefreshToken:
        """The refresh token with id ``token_id`` (never its value), or ``RefreshTokenNotFound``."""
        record = self._storage.get_refresh_token(token_id) if validation.is_client_id(token_id) else None
        if record is None:
            raise RefreshTokenNotFound(f"no refresh token {token_id!r}")
        return record

    def revoke(self, token_id: str) -> RefreshToken:
        """Revoke it and every access token it produced (idempotent)."""
        record = self.get(token_id)
        if record.revoked_at is not None:
            return record
        return self._revoke(record)

    def _revoke(self, record: RefreshToken) -> RefreshToken:
        written = self._revocations.write(self._revocations.entry(RevocationKind.CREDENTIAL, record.id))
        revoked = dataclasses.replace(record, revoked_at=utcnow(self._clock))
        self._storage.save_refresh_token(revoked)
        self._revocations.record(written)
        return revoked

    def revoke_presented(self, token: str, *, address: str | None = None) -> None:
        """Revoke the refresh token presented (RFC 7009); an unknown or wrong one is ignored."""
        record = self._match(token, address)
        if record is not None and record.revoked_at is None:
            self._revoke(record)

    def use(self, token: str, *, address: str | None = None) -> RefreshToken:
        """The record behind a live refresh token, its use recorded; ``InvalidGrant`` otherwise.

        ``TooManyAttempts`` when the token's id or the source ``address`` failed too often lately.
        """
        record = self._match(token, address)
        if record is None:
            self._hook.embedauth_token_denied(client_id=None, reason="refresh token unknown or wrong")
            raise _refused(InvalidGrant("the refresh token is invalid"), "refresh token unknown or wrong")
        now = utcnow(self._clock)
        idle = False
        if record.revoked_at is None and self.is_idle(record, now):
            record, idle = self._revoke(record), True
        if record.revoked_at is not None:
            reason = "refresh token revoked" + (" (idle too long)" if idle else "")
            self._hook.embedauth_token_denied(client_id=record.id, reason=reason)
            raise _refused(InvalidGrant("the refresh token is revoked"), reason, record)
        self._uses.note_refresh_token(record.id, now)  # written behind
        return dataclasses.replace(record, last_used_at=now)

    def is_idle(self, record: RefreshToken, now: datetime) -> bool:
        """Whether ``record`` went unused for longer than ``refresh_token_idle_days`` at ``now``
        (exactly that long is not yet idle)."""
        return now - record.idle_since() > timedelta(days=self._settings.refresh_token_idle_days)

    def revoke_idle(self, *, limit: int = 500) -> builtins.list[RefreshToken]:
        """Revoke up to ``limit`` refresh tokens idle too long (the sweep's part); return them."""
        now = utcnow(self._clock)
        before = now - timedelta(days=self._settings.refresh_token_idle_days)
        found = self._storage.idle_refresh_tokens(before, limit=limit)
        return [self._revoke(record) for record in found if self.is_idle(record, now)]

    def _match(self, token: str, address: str | None) -> RefreshToken | None:
        """The record ``token`` is, checked as client secrets are (throttled, one argon2 run)."""
        try:
            token_id = parse_refresh_token(token)
        except InvalidSecret:
            return None
        identity = f"refresh-token:{token_id}"
        cached = self._cache.get(token)
        if cached is None:
            self._throttle.check(identity, address)  # before any lookup or hash
        record = self._storage.get_refresh_token(token_id)
        stored = [] if record is None else [(record.id, record.hint, record.token_hash)]
        owner = "" if record is None else record.user
        if match_secret(self._hasher, self._cache, token, owner, stored, cached) is None:
            self._throttle.failed(identity, address)
            return None
        return record


def _refused(error: InvalidGrant, reason: str, record: RefreshToken | None = None) -> InvalidGrant:
    """``error`` carrying its reason, and the token it concerns, for the audit trail."""
    error.internal_reason = reason
    if record is not None:
        error.refused_client_id, error.refused_tenant, error.refused_actor = (
            record.id,
            record.tenant,
            record.user,
        )
    return error
