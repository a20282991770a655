"""Access tokens (RFC 9068 JWT): the grants that issue them, and verification on the hot path.

Issuing: ``client_credentials`` with a secret or a ``private_key_jwt`` assertion, and
``refresh_token`` with a person's API refresh token. Each authenticates first (an unknown client
and a wrong secret get the same answer), then checks the registration and the credential are
usable (and there may say why not), then the requested scope, then signs with the key ring's
current key.

Verifying is :class:`embedauth.verifier.Verifier`'s job, over this instance's key ring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt
import pluggy

from embedauth.assertions import FAILED, ClientAssertions
from embedauth.clock import Clock, from_timestamp, utcnow
from embedauth.config import Settings
from embedauth.errors import InvalidClient, InvalidScope, InvalidToken, UnauthorizedClient
from embedauth.keys import KeyRing
from embedauth.lru import LRUCache
from embedauth.models import (
    CertificateCredential,
    CustomerScope,
    Principal,
    Registration,
    Revocation,
    RevocationKind,
    SecretCredential,
    TokenResponse,
)
from embedauth.refresh_tokens import RefreshTokens
from embedauth.registrations import Registrations
from embedauth.revocation import RevocationState
from embedauth.secrets import REFRESH_TOKEN_PREFIX, new_id
from embedauth.storage.base import Storage
from embedauth.validation import parse_scopes
from embedauth.verifier import Verifier

__all__ = ["Tokens"]

#: Claims a hook cannot set: the ones verification and revocation rely on.
REGISTERED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scope",
        "tenant",
        "customer_scope",
        "cred",
    }
)
_USE_RECORD_INTERVAL = 60.0
#: ``embedauth_credential_expiring`` fires below each of these days left (1 stands for "expired").
EXPIRY_WARNINGS = (1, 7, 30)


class Tokens:
    """``auth.tokens``: the grants, and verification (also ``auth.verify``)."""

    def __init__(
        self,
        *,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        keys: KeyRing,
        revocations: RevocationState,
        registrations: Registrations,
        refresh_tokens: RefreshTokens,
        assertions: ClientAssertions,
        plugins: pluggy.PluginManager,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._keys = keys
        self._revocations = revocations
        self._registrations = registrations
        self._refresh_tokens = refresh_tokens
        self._assertions = assertions
        self._hook = plugins.hook
        self._verifier = Verifier(
            settings=settings, clock=clock, keys=keys, revocations=revocations, plugins=plugins
        )
        self._recorded_use: LRUCache[str, float] = LRUCache(10_000)
        self._warned: LRUCache[tuple[str, int], bool] = LRUCache(10_000)

    # ------------------------------------------------------------------ grants

    def client_credentials(
        self, client_id: str, client_secret: str, *, scope: str | Iterable[str] | None = None
    ) -> TokenResponse:
        """RFC 6749 §4.4 with a client secret. Raises ``InvalidClient`` or ``InvalidScope``."""
        registration, credential = self.authenticate_secret(client_id, client_secret)
        return self.for_client(registration, credential, scope)

    def client_assertion(
        self, assertion: str, *, client_id: str | None = None, scope: str | Iterable[str] | None = None
    ) -> TokenResponse:
        """RFC 6749 §4.4 with an RFC 7523 client assertion (``private_key_jwt``)."""
        registration, credential = self.authenticate_assertion(assertion, client_id=client_id)
        return self.for_client(registration, credential, scope)

    def refresh(self, refresh_token: str, *, scope: str | Iterable[str] | None = None) -> TokenResponse:
        """RFC 6749 §6 with a person's API refresh token; the response carries the same refresh token.

        Raises ``InvalidGrant`` for a token that is malformed, unknown, revoked or idle too long.
        """
        record = self._refresh_tokens.use(refresh_token)
        allowed = record.scopes or tuple(p.name for p in self._storage.list_permissions())
        scopes = self._granted(allowed, scope)
        response = self._issue(
            subject=record.user,
            client_id=record.id,
            tenant=record.tenant,
            scopes=scopes,
            customer_scope=CustomerScope(),
            credential_id=record.id,
        )
        return TokenResponse(
            response.access_token, response.expires_in, response.scope, refresh_token=refresh_token
        )

    # ------------------------------------------------------------------ client authentication

    def authenticate_secret(
        self, client_id: str, client_secret: str
    ) -> tuple[Registration, SecretCredential]:
        """The registration and secret, if the secret is right and both are usable (RFC 6749 §2.3.1)."""
        match = self._registrations.check_secret(client_id, client_secret)
        if match is None:
            self._deny(client_id if isinstance(client_id, str) else None, "unknown client or wrong secret")
            raise InvalidClient(FAILED)
        registration, credential = match
        self._check_usable(registration, credential)
        return registration, credential

    def authenticate_assertion(
        self, assertion: str, *, client_id: str | None = None
    ) -> tuple[Registration, CertificateCredential]:
        """The registration and certificate that signed ``assertion`` (RFC 7523 §2.2), if usable."""
        registration, credential = self._assertions.authenticate(assertion, client_id=client_id)
        self._check_usable(registration, credential)
        return registration, credential

    def _check_usable(
        self, registration: Registration, credential: SecretCredential | CertificateCredential
    ) -> None:
        """After authentication the caller has proven who it is, so the reason may be told."""
        now = utcnow(self._clock)
        reason = None
        if not registration.enabled:
            reason = "the registration is disabled"
        elif registration.registration_expires_at is not None and now >= registration.registration_expires_at:
            reason = "the registration has expired"
        elif not credential.is_live(now):
            kind = "client secret" if isinstance(credential, SecretCredential) else "certificate"
            reason = (
                f"the {kind} has expired" if now >= credential.expires_at else f"the {kind} is not yet valid"
            )
        self._warn_expiry(registration, credential, now)
        if reason is not None:
            self._deny(registration.client_id, reason)
            raise InvalidClient(reason)

    def _warn_expiry(
        self, registration: Registration, credential: SecretCredential | CertificateCredential, now: datetime
    ) -> None:
        """``embedauth_credential_expiring`` when a credential in use is within 30 or 7 days of its
        expiry, or past it: once per credential and threshold in this process."""
        days_left = math.floor((credential.expires_at - now) / timedelta(days=1))
        threshold = next((t for t in EXPIRY_WARNINGS if days_left < t), None)
        if threshold is None or self._warned.get((credential.id, threshold)) is not None:
            return
        self._warned.put((credential.id, threshold), True)
        self._hook.embedauth_credential_expiring(
            registration=registration, credential=credential, days_left=days_left
        )

    # ------------------------------------------------------------------ issuing

    def for_client(
        self,
        registration: Registration,
        credential: SecretCredential | CertificateCredential,
        scope: str | Iterable[str] | None,
    ) -> TokenResponse:
        """An access token for an authenticated, usable registration."""
        scopes = self._granted(registration.scopes, scope)
        response = self._issue(
            subject=registration.client_id,
            client_id=registration.client_id,
            tenant=registration.tenant,
            scopes=scopes,
            customer_scope=registration.customer_scope,
            credential_id=credential.id,
        )
        self._record_use(registration.client_id)
        return response

    def _granted(self, allowed: Iterable[str], requested: str | Iterable[str] | None) -> tuple[str, ...]:
        """RFC 6749 §3.3: the requested scopes if all are allowed; none requested means all."""
        allowed = tuple(allowed)
        try:
            wanted = parse_scopes(requested)
        except ValueError:
            raise InvalidScope("the scope is malformed") from None
        if not wanted:
            return tuple(sorted(allowed))
        extra = sorted(set(wanted) - set(allowed))
        if extra:
            raise InvalidScope(f"not granted to this client: {' '.join(extra)}")
        return wanted

    def _issue(
        self,
        *,
        subject: str,
        client_id: str,
        tenant: str | None,
        scopes: tuple[str, ...],
        customer_scope: CustomerScope,
        credential_id: str,
    ) -> TokenResponse:
        key, private_key = self._keys.signing_key()
        now = int(self._clock())
        lifetime = self._settings.access_token_lifetime
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": subject,
            "aud": self._settings.audience,
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "jti": new_id(),
            "client_id": client_id,
            "scope": " ".join(scopes),
            "customer_scope": str(customer_scope),
            "cred": credential_id,
        }
        if tenant is not None:
            claims["tenant"] = tenant
        for extra in self._hook.embedauth_extra_claims(subject=subject, client_id=client_id, scopes=scopes):
            claims.update({k: v for k, v in (extra or {}).items() if k not in REGISTERED_CLAIMS})
        token = jwt.encode(claims, private_key, algorithm=key.alg, headers={"typ": "at+jwt", "kid": key.kid})
        self._hook.embedauth_token_issued(
            client_id=client_id,
            subject=subject,
            token_id=claims["jti"],
            scopes=scopes,
            expires_at=from_timestamp(claims["exp"]),
        )
        return TokenResponse(access_token=token, expires_in=lifetime, scope=claims["scope"])

    def _record_use(self, client_id: str) -> None:
        """``last_used_at``, written at most once a minute per client and process."""
        now = self._clock()
        last = self._recorded_use.get(client_id)
        if last is None or now - last >= _USE_RECORD_INTERVAL:
            self._recorded_use.put(client_id, now)
            self._storage.record_use(client_id, utcnow(self._clock))

    # ------------------------------------------------------------------ verifying

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`InvalidToken` (see :mod:`.verifier`)."""
        return self._verifier.verify(token)

    # ------------------------------------------------------------------ revoking and introspecting

    def revoke(self, token: str, *, client_id: str | None = None) -> None:
        """RFC 7009 §2.1: revoke a refresh token or an access token; anything else is ignored.

        Possession is enough to revoke (revoking only ever takes rights away). When the request
        was client-authenticated (``client_id``), a token issued to another client is refused with
        ``UnauthorizedClient`` and left alone.
        """
        if isinstance(token, str) and token.startswith(REFRESH_TOKEN_PREFIX):
            self._refresh_tokens.revoke_presented(token)
            return
        try:
            principal = self.verify(token)
        except InvalidToken:
            return
        if client_id is not None and principal.client_id != client_id:
            self._deny(client_id, "revocation of another client's token")
            raise UnauthorizedClient("the token was not issued to this client")
        self._revoke_access_token(principal)

    def _revoke_access_token(self, principal: Principal) -> None:
        now = utcnow(self._clock)
        until = from_timestamp(principal.expires_at) + timedelta(seconds=self._settings.leeway)
        self._storage.add_revocation(
            Revocation(RevocationKind.ACCESS_TOKEN, principal.token_id, now, max(until, now))
        )
        self._revocations.sync()

    def introspect(self, token: str) -> Mapping[str, Any]:
        """RFC 7662 §2.2: ``{"active": false}`` for anything but a valid access token."""
        try:
            principal = self.verify(token)
        except InvalidToken:
            return {"active": False}
        claims = principal.claims
        body: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(sorted(principal.scopes)),
            "client_id": principal.client_id,
            "sub": principal.subject,
            "iss": claims["iss"],
            "aud": claims["aud"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": principal.token_id,
            "customer_scope": str(principal.customer_scope),
        }
        if principal.tenant is not None:
            body["tenant"] = principal.tenant
        return body

    def _deny(self, client_id: str | None, reason: str) -> None:
        self._hook.embedauth_token_denied(client_id=client_id, reason=reason)
