"""Access-token verification: the hot path of every protected request.

A :class:`Verifier` needs a source of public keys (the local key ring, or a remote issuer's JWKS)
and a revocation view; it touches no storage and no network in steady state. A token seen before is
answered from a bounded cache keyed by the token itself, and a hit still checks expiry and
revocation. Every failure is the one :class:`~embedauth.errors.InvalidToken`; the reason goes to
the ``embedauth_token_denied`` hook.
"""

from __future__ import annotations

import math
import threading
import time
from types import MappingProxyType
from typing import Any, Protocol

import pluggy

from embedauth.clock import Clock
from embedauth.config import Settings
from embedauth.errors import InvalidToken, StorageError
from embedauth.lru import BoundedDict, LRUCache
from embedauth.models import CustomerScope, Principal
from embedauth.tokens import jws
from embedauth.validation import parse_customer_scope

__all__ = ["ACCESS_TOKEN_TYPES", "KeySource", "RevocationView", "Verifier", "VerifyingKey"]

#: RFC 9068 §2.1: ``typ`` is ``at+jwt`` (``application/at+jwt`` accepted, RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: After a failed :meth:`Verifier.prepare`, seconds before storage is tried again.
_RETRY_FLOOR = 1.0
_CUSTOMER_SCOPES = 1024  # distinct customer-scope values remembered


class VerifyingKey(Protocol):
    """A public key ready to check signatures, with the id and algorithm it is bound to."""

    @property
    def kid(self) -> str:
        """The key id."""
        ...

    @property
    def alg(self) -> str:
        """The algorithm the key is bound to (a token's header must name the same)."""
        ...

    @property
    def verify(self) -> jws.Verifier:
        """``verify(signature, signing_input) -> bool``."""
        ...


class KeySource(Protocol):
    """Where a verifier finds public keys: the local key ring, or a remote issuer's JWKS."""

    def prepare(self) -> None:
        """Load the keys (blocking I/O, bounded by timeouts); idempotent."""

    def get(self, kid: str) -> VerifyingKey | None:
        """The published key ``kid``, or None: memory only (an unknown kid may start a refresh in
        the background, never a wait)."""


class RevocationView(Protocol):
    """What a verifier asks about revocation: in memory, no I/O per call."""

    def start(self) -> None:
        """Load the state and keep it current (idempotent)."""

    def check_current(self) -> None:
        """``StorageError`` when the state is too old to be trusted (storage unreachable too long)."""

    def is_revoked(
        self,
        *,
        client_id: str,
        credential_id: str | None,
        token_id: str,
        issued_at: float,
        generation: int = 0,
        kid: str | None = None,
    ) -> bool:
        """Whether a token with these claims is revoked."""
        ...


class _Verified:
    """A cache entry: the token's principal and what a hit checks again. A plain slotted class,
    not a frozen dataclass: it is made once per first-seen token, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) costs three times as much."""

    __slots__ = ("expires", "generation", "kid", "principal")

    def __init__(self, principal: Principal, expires: float, generation: int, kid: str) -> None:
        self.principal = principal
        self.expires = expires  # exp plus leeway
        self.generation = generation
        self.kid = kid

    def revoked(self, revocations: RevocationView) -> bool:
        principal = self.principal
        return revocations.is_revoked(
            client_id=principal.client_id,
            credential_id=principal.credential_id,
            token_id=principal.token_id,
            issued_at=principal.issued_at,
            generation=self.generation,
            kid=self.kid,
        )


class Verifier:
    """``verify(token) -> Principal`` against one issuer's keys and revocations."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        keys: KeySource,
        revocations: RevocationView,
        plugins: pluggy.PluginManager,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._keys = keys
        self._revocations = revocations
        self._hook = plugins.hook
        self._cache: LRUCache[str, _Verified] = LRUCache(settings.token_cache_size)
        self._issuer = settings.issuer
        self._leeway = settings.leeway
        self._audiences = frozenset(settings.audiences or (settings.issuer,))
        # A deployment has a few customer-scope values; a full map is emptied (see _customer_scope).
        self._customer_scopes: BoundedDict[str, CustomerScope] = BoundedDict(_CUSTOMER_SCOPES)
        self._prepared = False
        self._preparing = threading.Lock()
        self._failed_at = -math.inf

    @property
    def ready(self) -> bool:
        """Whether :meth:`prepare` has loaded what verification needs."""
        return self._prepared

    def prepare(self) -> None:
        """Load the keys and the revocation state (blocking I/O, bounded by the storage timeout).

        Idempotent. After a failure it raises ``StorageError`` at once for a second before trying
        storage again, so that an outage does not become a queue of waits.
        """
        if self._prepared:
            return
        with self._preparing:
            if self._prepared:
                return
            if time.monotonic() - self._failed_at < _RETRY_FLOOR:
                raise StorageError("storage was unreachable a moment ago; retrying shortly")
            try:
                self._keys.prepare()
                self._revocations.start()
            except StorageError:
                self._failed_at = time.monotonic()
                raise
            self._prepared = True

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`InvalidToken`.

        No I/O once prepared (the first call prepares, blocking). ``StorageError`` when the
        revocation state is older than ``max_staleness`` (storage down too long): fail closed.
        """
        if not self._prepared:
            self.prepare()
        self._revocations.check_current()
        now = self._clock()
        cached = self._cache.get(token) if isinstance(token, str) else None
        if cached is not None:
            if now < cached.expires and not cached.revoked(self._revocations) and self._keys.get(cached.kid):
                return cached.principal
            self._cache.pop(token)
            self._deny(cached.principal.client_id, "expired or revoked")
            raise InvalidToken
        try:
            verified = self._verify(token, now)
        except jws.Refused as refused:
            self._deny(refused.client_id, refused.reason)
            raise InvalidToken from None
        self._cache.put(token, verified)
        return verified.principal

    def _verify(self, token: str, now: float) -> _Verified:
        settings = self._settings
        compact = jws.parse(token, max_bytes=settings.max_token_bytes)
        header = compact.header
        typ = header.get("typ")  # a media type: case-insensitive (RFC 7515 §4.1.9)
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise jws.Refused("typ is not at+jwt")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jws.Refused("unknown kid")
        if header["alg"] != key.alg:
            raise jws.Refused("alg does not match the key")
        if not key.verify(compact.signature, compact.signing_input):
            raise jws.Refused("bad signature")
        claims = compact.payload()
        try:
            return self._check_claims(claims, key, now)
        except jws.Refused as refused:
            client_id = claims.get("client_id")  # signed by this deployment: not a caller's claim
            refused.client_id = client_id if isinstance(client_id, str) else None
            raise

    def _check_claims(self, claims: dict[str, Any], key: VerifyingKey, now: float) -> _Verified:
        if claims.get("iss") != self._issuer:
            raise jws.Refused("wrong issuer")
        audience = claims.get("aud")
        if isinstance(audience, str):
            accepted = audience in self._audiences
        else:
            # RFC 7519 §4.1.3: an array of strings; anything else in it refuses the token
            accepted = (
                isinstance(audience, list)
                and all(isinstance(a, str) for a in audience)
                and not self._audiences.isdisjoint(audience)
            )
        if not accepted:
            raise jws.Refused("wrong audience")
        leeway = self._leeway
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
        number = jws.is_numeric_date
        if not number(exp) or not number(iat) or not number(nbf):
            raise jws.Refused("exp, iat or nbf missing or not a number")
        if now >= exp + leeway:
            raise jws.Refused("expired")
        if iat > now + leeway or nbf > now + leeway:
            raise jws.Refused("not yet valid")
        subject, client_id, token_id = claims.get("sub"), claims.get("client_id"), claims.get("jti")
        scope, credential_id = claims.get("scope", ""), claims.get("cred")
        generation = claims.get("gen", 0)
        if not (isinstance(subject, str) and isinstance(client_id, str) and isinstance(token_id, str)):
            raise jws.Refused("sub, client_id or jti missing")
        if not isinstance(scope, str) or not (credential_id is None or isinstance(credential_id, str)):
            raise jws.Refused("scope or cred malformed")
        if type(generation) is not int or not 0 <= generation < 2**31:
            raise jws.Refused("gen malformed")
        if self._revocations.is_revoked(
            client_id=client_id,
            credential_id=credential_id,
            token_id=token_id,
            issued_at=iat,
            generation=generation,
            kid=key.kid,
        ):
            raise jws.Refused("revoked")
        tenant = claims.get("tenant")
        customer_scope = self._customer_scope(claims.get("customer_scope", "all"))
        principal = Principal(
            subject=subject,
            client_id=client_id,
            tenant=tenant if isinstance(tenant, str) else None,
            scopes=frozenset(scope.split()),
            customer_scope=customer_scope,
            credential_id=credential_id,
            token_id=token_id,
            expires_at=float(exp),
            issued_at=float(iat),
            claims=MappingProxyType(claims),
        )
        return _Verified(principal, exp + leeway, generation, key.kid)

    def _customer_scope(self, text: object) -> CustomerScope:
        """Parsed once per distinct value: a deployment has few, and every token carries one."""
        if not isinstance(text, str):
            raise jws.Refused("customer_scope malformed")
        scope = self._customer_scopes.get(text)
        if scope is None:
            try:
                scope = parse_customer_scope(text)
            except ValueError:
                raise jws.Refused("customer_scope malformed") from None
            self._customer_scopes.put(text, scope)
        return scope

    def _deny(self, client_id: str | None, reason: str) -> None:
        self._hook.embedauth_token_denied(client_id=client_id, reason=reason)

    def cache_size(self) -> int:
        """How many verified tokens are remembered now."""
        return len(self._cache)
