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
from collections.abc import Callable, Iterable
from datetime import timedelta

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
from embedauth.errors import InvalidGrant, InvalidSecret, RefreshTokenNotFound, UnknownPermission
from embedauth.models import CreatedRefreshToken, RefreshToken, RevocationKind
from embedauth.registry.last_used import UseRecorder
from embedauth.storage.base import Storage
from embedauth.tokens.revocation import revocation_entry

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
        on_revoked: Callable[[], None],
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._hasher = hasher
        self._cache = cache
        self._hook = plugins.hook
        self._on_revoked = on_revoked
        self._uses = UseRecorder(clock)

    def create(
        self, user: str, *, scopes: Iterable[str] | str | None = None, tenant: str | None = None
    ) -> CreatedRefreshToken:
        """A new refresh token for ``user``: the only time its value is visible."""
        user = validation.parse_identifier(user, "user")
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
        now = utcnow(self._clock)
        self._storage.add_revocation(
            revocation_entry(RevocationKind.REFRESH_TOKEN, record.id, now, self._settings)
        )
        revoked = dataclasses.replace(record, revoked_at=now)
        self._storage.save_refresh_token(revoked)
        self._on_revoked()
        return revoked

    def revoke_presented(self, token: str) -> None:
        """Revoke the refresh token presented (RFC 7009); an unknown or wrong one is ignored."""
        record = self._match(token)
        if record is not None and record.revoked_at is None:
            self._revoke(record)

    def use(self, token: str) -> RefreshToken:
        """The record behind a live refresh token, its use recorded; ``InvalidGrant`` otherwise."""
        record = self._match(token)
        if record is None:
            self._hook.embedauth_token_denied(client_id=None, reason="refresh token unknown or wrong")
            raise InvalidGrant("the refresh token is invalid")
        now = utcnow(self._clock)
        if record.revoked_at is None and now - record.idle_since() > timedelta(
            days=self._settings.refresh_token_idle_days
        ):
            record = self._revoke(record)
        if record.revoked_at is not None:
            self._hook.embedauth_token_denied(client_id=record.id, reason="refresh token revoked")
            raise InvalidGrant("the refresh token is revoked")
        if self._uses.due(record.id):
            self._storage.record_refresh_token_use(record.id, now)
            record = dataclasses.replace(record, last_used_at=now)
        return record

    def _match(self, token: str) -> RefreshToken | None:
        try:
            token_id = parse_refresh_token(token)
        except InvalidSecret:
            return None
        record = self._storage.get_refresh_token(token_id)
        stored = [] if record is None else [(record.id, record.token_hash)]
        owner = "" if record is None else record.user
        if match_secret(self._hasher, self._cache, token, owner, stored) is None:
            return None
        return record
