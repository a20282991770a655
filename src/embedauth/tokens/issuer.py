"""Access tokens (RFC 9068 JWT): the grants that issue them, revocation and introspection.

Issuing: ``client_credentials`` with a secret or a ``private_key_jwt`` assertion, and
``refresh_token`` with a person's API refresh token. A client is authenticated first
(:mod:`embedauth.credentials.client_auth`: an unknown client and a wrong secret get the same answer,
a known one may then be told why it cannot have a token), then the requested scope is checked, then
the token is signed with the key ring's current key.

Verifying is :class:`embedauth.tokens.verifier.Verifier`'s job, over this instance's key ring.

Every token issued, and every token request refused (with its internal reason, the registration
and the source address when known), goes to the audit trail (:mod:`embedauth.registry.audit`,
written behind). A refused *bearer token* is not audited: that is the verifier's hot path, and
the ``embedauth_token_denied`` hook (the logging plugin) already reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pluggy

from embedauth.clock import Clock, from_timestamp, to_timestamp, utcnow
from embedauth.config import Settings
from embedauth.credentials.client_auth import (
    ClientAuthenticator,
    Credential,
    Presented,
    PresentedAssertion,
    PresentedSecret,
)
from embedauth.credentials.secrets import REFRESH_TOKEN_PREFIX, new_id
from embedauth.errors import InvalidClient, InvalidScope, InvalidToken, OAuthError, UnauthorizedClient
from embedauth.lru import LRUCache
from embedauth.models import (
    CustomerScope,
    Principal,
    Registration,
    RevocationKind,
    TokenResponse,
)
from embedauth.registry.audit import Audit
from embedauth.registry.last_used import UseWriter
from embedauth.registry.refresh_tokens import RefreshTokens
from embedauth.storage.base import Storage
from embedauth.tokens import jws
from embedauth.tokens.keys import KeyRing
from embedauth.tokens.revocation import RevocationState
from embedauth.tokens.verifier import Verifier
from embedauth.validation import parse_scopes

__all__ = ["REGISTERED_CLAIMS", "Tokens"]

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
        "gen",
    }
)


class Tokens:
    """``auth.tokens``: the grants, revocation, introspection and verification (also ``auth.verify``)."""

    def __init__(
        self,
        *,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        keys: KeyRing,
        revocations: RevocationState,
        clients: ClientAuthenticator,
        refresh_tokens: RefreshTokens,
        plugins: pluggy.PluginManager,
        audit: Audit,
        uses: UseWriter,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._keys = keys
        self._revocations = revocations
        self._clients = clients
        self._refresh_tokens = refresh_tokens
        self._hook = plugins.hook
        self._verifier = Verifier(
            settings=settings, clock=clock, keys=keys, revocations=revocations, plugins=plugins
        )
        self._audit = audit
        self._uses = uses
        self._signers: LRUCache[str, jws.Signer] = LRUCache(8)  # kid -> its signer, header encoded once

    # ------------------------------------------------------------------ grants

    def client_credentials(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Iterable[str] | None = None,
        address: str | None = None,
    ) -> TokenResponse:
        """RFC 6749 §4.4 with a client secret. Raises ``InvalidClient`` or ``InvalidScope``."""
        return self.grant(PresentedSecret(client_id, client_secret), scope, address=address)

    def client_assertion(
        self,
        assertion: str,
        *,
        client_id: str | None = None,
        scope: str | Iterable[str] | None = None,
        address: str | None = None,
    ) -> TokenResponse:
        """RFC 6749 §4.4 with an RFC 7523 client assertion (``private_key_jwt``)."""
        return self.grant(PresentedAssertion(assertion, client_id), scope, address=address)

    def grant(
        self, presented: Presented | None, scope: str | Iterable[str] | None, *, address: str | None = None
    ) -> TokenResponse:
        """``client_credentials`` as the token endpoint runs it: authenticate what the client
        ``presented`` (None: nothing, ``InvalidClient``), then issue; audited either way, with the
        source ``address`` when known."""
        try:
            if presented is None:
                raise InvalidClient("client authentication is required")
            registration, credential = self._clients.authenticate(presented, address=address)
        except OAuthError as error:
            claimed = None if presented is None else presented.client_id
            self._refused(error, "client_credentials", error.refused_client_id or claimed, address)
            raise
        return self.for_client(registration, credential, scope, address=address)

    def refresh(
        self, refresh_token: str, *, scope: str | Iterable[str] | None = None, address: str | None = None
    ) -> TokenResponse:
        """RFC 6749 §6 with a person's API refresh token; the response carries the same refresh token.

        Raises ``InvalidGrant`` for a token that is malformed, unknown, revoked or idle too long.
        """
        record = None
        try:
            record = self._refresh_tokens.use(refresh_token, address=address)
            scopes = self._granted(record.scopes, scope)
            response = self._issue(
                subject=record.user,
                client_id=record.id,
                tenant=record.tenant,
                scopes=scopes,
                customer_scope=record.customer_scope,
                credential_id=record.id,
                generation=0,
                not_after=(),
                address=address,
                grant="refresh_token",
            )
        except OAuthError as error:
            if record is not None:
                error.refused_client_id, error.refused_tenant = record.id, record.tenant
                error.refused_actor = record.user
            self._refused(error, "refresh_token", error.refused_client_id, address, actor=error.refused_actor)
            raise
        return TokenResponse(
            response.access_token, response.expires_in, response.scope, refresh_token=refresh_token
        )

    def _refused(
        self,
        error: OAuthError,
        grant: str,
        client_id: str | None,
        address: str | None,
        *,
        actor: str | None = None,
    ) -> None:
        """A refused token request, to the audit trail with its internal reason."""
        reason = error.internal_reason or (
            f"{error.error}: {error.description}" if error.description else error.error
        )
        self._audit.record(
            actor=actor or (client_id if isinstance(client_id, str) and client_id else "anonymous"),
            action="token.refused",
            tenant=error.refused_tenant,
            client_id=client_id if grant == "client_credentials" else None,
            target=client_id if grant == "refresh_token" else None,
            source=address,
            outcome="refused",
            reason=reason,
            detail={"grant_type": grant, "error": error.error},
        )

    # ------------------------------------------------------------------ issuing

    def for_client(
        self,
        registration: Registration,
        credential: Credential,
        scope: str | Iterable[str] | None,
        *,
        address: str | None = None,
    ) -> TokenResponse:
        """An access token for a registration that :mod:`~embedauth.credentials.client_auth` let in
        (audited, with the source ``address`` when known)."""
        try:
            scopes = self._granted(registration.scopes, scope)
            ends = (credential.expires_at, registration.registration_expires_at)
            response = self._issue(
                subject=registration.client_id,
                client_id=registration.client_id,
                tenant=registration.tenant,
                scopes=scopes,
                customer_scope=registration.customer_scope,
                credential_id=credential.id,
                generation=registration.generation,
                not_after=tuple(int(to_timestamp(end)) for end in ends if end is not None),
                address=address,
                grant="client_credentials",
            )
        except OAuthError as error:
            error.refused_tenant = registration.tenant
            if error.internal_reason is None and isinstance(error, InvalidScope):
                error.internal_reason = f"scope refused: {error.description}"
            self._refused(error, "client_credentials", registration.client_id, address)
            raise
        self._uses.note(registration.client_id, credential.id, utcnow(self._clock))
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
        generation: int,
        not_after: tuple[int, ...],
        address: str | None = None,
        grant: str = "client_credentials",
    ) -> TokenResponse:
        """Sign a token. ``exp`` never outlives ``not_after`` (the credential's and the registration's
        ends); ``gen`` is the registration generation the token was issued under."""
        self._revocations.ensure_max_token_age()  # every entry from now on outlives this token
        key, private_key = self._keys.signing_key()
        now = int(self._clock())
        exp = min((now + self._settings.access_token_lifetime, *not_after))
        if exp <= now:
            raise self._deny(
                client_id,
                "the credential expires within the second",
                InvalidClient("the credential has expired"),
            )
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": subject,
            "aud": self._settings.audience,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "jti": new_id(),
            "client_id": client_id,
            "scope": " ".join(scopes),
            "customer_scope": str(customer_scope),
            "cred": credential_id,
        }
        if generation:
            claims["gen"] = generation
        if tenant is not None:
            claims["tenant"] = tenant
        hook = self._hook
        if hook.embedauth_extra_claims.get_hookimpls():
            for extra in hook.embedauth_extra_claims(subject=subject, client_id=client_id, scopes=scopes):
                claims.update({k: v for k, v in (extra or {}).items() if k not in REGISTERED_CLAIMS})
        sign = self._signers.get(key.kid)
        if sign is None:
            sign = jws.signer(key.alg, private_key, {"typ": "at+jwt", "kid": key.kid})
            self._signers.put(key.kid, sign)
        token = sign(claims)
        # A pause this process learned of while signing: the token would be refused anyway.
        if self._revocations.is_revoked(
            client_id=client_id,
            credential_id=credential_id,
            token_id=claims["jti"],
            issued_at=now,
            generation=generation,
            kid=key.kid,
        ):
            raise self._deny(
                client_id,
                "revoked while the token was being signed",
                InvalidClient("the registration is disabled or the credential revoked"),
            )
        if hook.embedauth_token_issued.get_hookimpls():
            hook.embedauth_token_issued(
                client_id=client_id,
                subject=subject,
                token_id=claims["jti"],
                scopes=scopes,
                expires_at=from_timestamp(claims["exp"]),
            )
        refresh = grant == "refresh_token"
        self._audit.record(
            actor=subject,
            action="token.issued",
            tenant=tenant,
            client_id=None if refresh else client_id,
            target=credential_id if refresh else None,
            source=address,
            detail={
                "grant_type": grant,
                "token_id": claims["jti"],
                "credential_id": credential_id,
                "scopes": list(scopes),
                "expires_at": from_timestamp(exp),
            },
        )
        return TokenResponse(access_token=token, expires_in=exp - now, scope=claims["scope"])

    # ------------------------------------------------------------------ verifying

    def prepare(self) -> None:
        """Load what :meth:`verify` needs (see :meth:`embedauth.EmbedAuth.prepare`)."""
        self._verifier.prepare()

    @property
    def ready(self) -> bool:
        """Whether verification is prepared (it then does no I/O)."""
        return self._verifier.ready

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`InvalidToken` (see :mod:`embedauth.tokens.verifier`)."""
        return self._verifier.verify(token)

    # ------------------------------------------------------------------ revoking and introspecting

    def revoke(self, token: str, *, client_id: str | None = None, address: str | None = None) -> None:
        """RFC 7009 §2.1: revoke a refresh token or an access token; anything else is ignored.

        Possession is enough to revoke (revoking only ever takes rights away). When the request
        was client-authenticated (``client_id``), a token issued to another client is refused with
        ``UnauthorizedClient`` and left alone.
        """
        if isinstance(token, str) and token.startswith(REFRESH_TOKEN_PREFIX):
            self._refresh_tokens.revoke_presented(token, address=address)
            return
        try:
            principal = self.verify(token)
        except InvalidToken:
            return
        if client_id is not None and principal.client_id != client_id:
            raise self._deny(
                client_id,
                "revocation of another client's token",
                UnauthorizedClient("the token was not issued to this client"),
            )
        self._revoke_access_token(principal)

    def _revoke_access_token(self, principal: Principal) -> None:
        """One entry for the token; past the per-client limit, one for all the client's tokens so far."""
        revocations, client_id, issued_at = self._revocations, principal.client_id, int(principal.issued_at)
        if revocations.token_entries(client_id) >= self._settings.revocation_client_token_limit:
            entry = revocations.entry(RevocationKind.CLIENT_TOKENS, client_id, issued_at=issued_at)
        else:
            until = from_timestamp(principal.expires_at) + timedelta(seconds=self._settings.leeway)
            entry = revocations.entry(
                RevocationKind.ACCESS_TOKEN,
                principal.token_id,
                client_id=client_id,
                issued_at=issued_at,
                until=until,
            )
        revocations.revoke(entry)

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

    def _deny(self, client_id: str | None, reason: str, error: OAuthError) -> OAuthError:
        """``error``, its reason reported to the ``embedauth_token_denied`` hook and carried on it."""
        self._hook.embedauth_token_denied(client_id=client_id, reason=reason)
        error.internal_reason, error.refused_client_id = reason, client_id
        return error
