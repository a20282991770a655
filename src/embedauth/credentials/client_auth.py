"""Client authentication: every way a client proves who it is, in one place.

* ``client_secret_basic`` and ``client_secret_post`` (RFC 6749 §2.3.1): :meth:`ClientAuthenticator.check_secret`.
  A malformed secret is refused by its checksum before any storage lookup; an unknown client costs
  the same argon2 work as a wrong secret, and the two get the same answer.
* ``private_key_jwt`` (RFC 7523 §2.2 and §3, OIDC Core §9): :meth:`ClientAuthenticator.check_assertion`.
  The client signs a short-lived JWT (the *client assertion*) with the private key of a certificate
  an admin registered for it.

Which method a request used, and its parameters, is the HTTP layer's reading
(:mod:`embedauth.http.oauth`); it hands over a :class:`PresentedSecret` or a
:class:`PresentedAssertion`. Every refusal of either is the same ``InvalidClient("client
authentication failed")``: a caller learns nothing about which check failed (no oracle for probing
client ids, key ids or clock skew); the specific reason goes to the ``embedauth_token_denied`` hook.

Only after a client proved possession does :meth:`ClientAuthenticator.authenticate` check that the
registration and the credential may be used (enabled, unexpired), and then it may say why not: the
caller has shown who it is, so telling is safe.

A client assertion is checked in this order, the cheap and unauthenticated before the costly and the stateful:

1. **Shape** (:func:`embedauth.tokens.jws.parse`): size limit first, three base64url segments, a JSON
   header that names its ``alg`` and carries no parameter that would let the token choose its own
   key (``jwk``, ``jku``, ``x5u``, ``x5c``) or its processing (``crit``...). ``alg`` must be an
   asymmetric one embedauth accepts (RS256, PS256, ES256, ES384, ES512, EdDSA): never ``none``, and
   never HS256, which would let a forger key the MAC with the certificate's *public* key (RFC 8725
   §2.1, §3.1).
2. **Which client** — the payload is read, not yet trusted, only to find ``sub`` (RFC 7523 §3 item
   2.B: the client id). It must be an RFC 6749 client id (printable ASCII) and, when the request
   also carries ``client_id``, equal it (RFC 7521 §4.2). The registration is loaded by it.
3. **Which key** — the registration's certificates that are valid now: the one named by the header's
   ``x5t#S256`` thumbprint (RFC 7515 §4.1.8), else by its ``kid`` (a certificate id or thumbprint),
   else each in turn (a client with two certificates during a switch need not say which it used).
   A certificate whose key does not fit the header's ``alg`` is skipped, so a token cannot have an
   RSA key checked as ECDSA or the like. Parsed public keys are kept in a bounded LRU cache.
4. **Signature** — it must verify with one of those keys. Only now are the claims trusted.
5. **Claims** (RFC 7523 §3): ``iss`` and ``sub`` both the client id; ``aud`` (a string, or a list of
   strings) holds the token endpoint's URL or the issuer identifier. RFC 7523 says the token endpoint
   URL *may* serve as the audience and OIDC Core §9 says it *should*, while RFC 7523 also allows the
   authorization server's issuer; clients differ in practice (Authlib sends the token endpoint,
   Node's openid-client the issuer), so both are accepted, compared exactly apart from one trailing
   slash on the issuer. Nothing else is: an assertion meant for another server, or for another
   endpoint of this one, is refused. ``exp`` is required and must lie in the future (within the
   leeway) and no more than ``assertion_max_lifetime`` ahead: a client cannot mint a long-lived
   assertion, which also bounds how long its ``jti`` must be remembered. ``nbf`` and ``iat``, when
   present, must not be in the future; ``jti`` is required.
6. **Replay** (RFC 7523 §3 item 7) — the ``jti`` is consumed once, atomically in storage, until the
   assertion's ``exp`` (plus leeway) has passed. This is the last check on purpose: consuming is a
   write, and consuming the ``jti`` of an assertion refused for another reason would let anyone who
   saw an assertion (in a log, say) burn its ``jti`` with a forged copy, and would cost a storage
   write per forgery. Only an assertion that is otherwise good uses up its ``jti``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from embedauth.clock import Clock, from_timestamp, utcnow
from embedauth.config import Settings
from embedauth.credentials.secrets import SecretCache, SecretHasher, match_secret, parse_client_secret
from embedauth.credentials.throttle import AuthThrottle
from embedauth.errors import InvalidClient, InvalidSecret
from embedauth.lru import LRUCache
from embedauth.models import CertificateCredential, Registration, SecretCredential
from embedauth.registry.view import RegistrationView
from embedauth.storage.base import Storage
from embedauth.tokens import jws
from embedauth.validation import is_client_id

__all__ = [
    "ASSERTION_ALGORITHMS",
    "ASSERTION_TYPE",
    "FAILED",
    "MAX_JTI_LENGTH",
    "ClientAuthenticator",
    "Credential",
    "Presented",
    "PresentedAssertion",
    "PresentedSecret",
]

#: The ``client_assertion_type`` of RFC 7523 §2.2.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The header ``alg`` values a client may sign with, each fitting one kind of certificate key:
#: RS256 and PS256 an RSA key, ES256 / ES384 / ES512 an EC key on P-256 / P-384 / P-521 exactly
#: (RFC 7518 §3.4), EdDSA an Ed25519 key.
ASSERTION_ALGORITHMS = frozenset(jws.ASYMMETRIC)
MAX_JTI_LENGTH = 256
#: The one message of every refusal before the client has proven who it is.
FAILED = "client authentication failed"
_KEY_CACHE_SIZE = 1024

Credential = SecretCredential | CertificateCredential


@dataclass(frozen=True, slots=True)
class PresentedSecret:
    """A client ID and secret, as sent with ``client_secret_basic`` or ``client_secret_post``."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PresentedAssertion:
    """A ``private_key_jwt`` client assertion, with the request's ``client_id`` when it sent one."""

    assertion: str = field(repr=False)
    client_id: str | None = None


Presented = PresentedSecret | PresentedAssertion


class _Denied(Exception):
    """Internal: why an assertion is refused, and for which client (when known)."""

    def __init__(self, reason: str, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_id = client_id
        self.tenant: str | None = None  # set once the registration is known


class ClientAuthenticator:
    """``auth.clients``: checks what a client presents, then whether it may get tokens."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        hasher: SecretHasher,
        secret_cache: SecretCache,
        plugins: pluggy.PluginManager,
        throttle: AuthThrottle,
        registrations: RegistrationView,
        *,
        key_cache_size: int = _KEY_CACHE_SIZE,
    ) -> None:
        self._storage = storage
        self._registrations = registrations
        self._settings = settings
        self._clock = clock
        self._hasher = hasher
        self._secret_cache = secret_cache
        self._throttle = throttle
        self._hook = plugins.hook
        issuer = settings.issuer.rstrip("/")
        self._audiences = frozenset({settings.token_endpoint, settings.issuer, issuer, issuer + "/"})
        # (certificate id, thumbprint) -> its public key, parsed once. The thumbprint in the key means
        # an entry can only ever serve the exact certificate it was parsed from.
        self._keys: LRUCache[tuple[str, str], PublicKeyTypes] = LRUCache(key_cache_size)

    # ------------------------------------------------------------------ possession, then usability

    def authenticate(
        self, presented: Presented, *, address: str | None = None
    ) -> tuple[Registration, Credential]:
        """The registration and credential behind ``presented``, if it is right and both are usable.

        ``InvalidClient("client authentication failed")`` when it is not right; ``InvalidClient``
        saying why when it is right but the registration is disabled or expired, or the credential
        expired or not yet valid; ``TooManyAttempts`` when the client ID or the source ``address``
        failed too often lately (see :mod:`embedauth.credentials.throttle`).
        """
        credential: Credential
        if isinstance(presented, PresentedAssertion):
            registration, credential = self.check_assertion(
                presented.assertion, client_id=presented.client_id
            )
        else:
            found, match = self._check_secret(presented.client_id, presented.client_secret, address)
            if match is None:
                claimed = presented.client_id if isinstance(presented.client_id, str) else None
                raise self._deny(
                    claimed,
                    "unknown client or wrong secret",
                    InvalidClient(FAILED),
                    tenant=None if found is None else found.tenant,
                )
            registration, credential = match
        self._check_usable(registration, credential)
        return registration, credential

    def authenticate_secret(
        self, client_id: str, client_secret: str
    ) -> tuple[Registration, SecretCredential]:
        """:meth:`authenticate` for a client secret (RFC 6749 §2.3.1)."""
        registration, credential = self.authenticate(PresentedSecret(client_id, client_secret))
        assert isinstance(credential, SecretCredential)
        return registration, credential

    def authenticate_assertion(
        self, assertion: str, *, client_id: str | None = None
    ) -> tuple[Registration, CertificateCredential]:
        """:meth:`authenticate` for a client assertion (RFC 7523 §2.2)."""
        registration, credential = self.authenticate(PresentedAssertion(assertion, client_id))
        assert isinstance(credential, CertificateCredential)
        return registration, credential

    # ------------------------------------------------------------------ client secrets

    def check_secret(
        self, client_id: str, client_secret: str, *, address: str | None = None
    ) -> tuple[Registration, SecretCredential] | None:
        """The registration and the secret credential that ``client_secret`` matches, or None.

        A malformed secret is refused by its checksum before any storage lookup (one this process
        verified before passed it then). A secret not verified before is throttled, then costs one
        argon2 run, whatever the number of secrets stored and whether the client exists. The match
        is returned even if the credential or the registration has expired or is disabled:
        :meth:`authenticate` decides, and may say why.
        """
        return self._check_secret(client_id, client_secret, address)[1]

    def _check_secret(
        self, client_id: str, client_secret: str, address: str | None
    ) -> tuple[Registration | None, tuple[Registration, SecretCredential] | None]:
        """:meth:`check_secret`, with the registration found (for the audit trail's tenant)."""
        cached = self._secret_cache.get(client_secret)  # memory only: a MAC and a lookup
        known = cached is not None and cached.owner == client_id
        if not known:
            # A secret verified before passed this check then; any other is checked now.
            try:
                parse_client_secret(client_secret)
            except InvalidSecret:
                return None, None
            self._throttle.check(client_id, address)  # before any lookup or hash
        # From memory only when the secret is known too; otherwise argon2 runs, after the same
        # storage read for every client ID (no timing difference between unknown and known ones).
        registration = (
            self._registrations.get(client_id, fresh=not known) if is_client_id(client_id) else None
        )
        stored = [] if registration is None else [(s.id, s.hint, s.secret_hash) for s in registration.secrets]
        matched = match_secret(self._hasher, self._secret_cache, client_secret, client_id, stored, cached)
        if matched is None:
            self._throttle.failed(client_id, address)
        if registration is None or matched is None:
            return registration, None
        credential = next(s for s in registration.secrets if s.id == matched)
        if not known and self._hasher.needs_rehash(credential.secret_hash):  # argon2 ran: now or never
            self._rehash(client_id, credential.id, client_secret)
        return registration, (registration, credential)

    def _rehash(self, client_id: str, secret_id: str, client_secret: str) -> None:
        """Upgrade a hash made with older argon2 parameters (best effort: a race just skips it)."""
        new_hash = self._hasher.hash(client_secret)
        registration = self._storage.get_registration(client_id)
        if registration is None:
            return
        secrets = tuple(
            dataclasses.replace(s, secret_hash=new_hash) if s.id == secret_id else s
            for s in registration.secrets
        )
        self._storage.save_registration(
            dataclasses.replace(registration, secrets=secrets, version=registration.version + 1),
            expected_version=registration.version,
        )
        self._registrations.forget(client_id)

    # ------------------------------------------------------------------ client assertions

    def check_assertion(
        self, assertion: str, *, client_id: str | None = None
    ) -> tuple[Registration, CertificateCredential]:
        """The registration and the certificate whose key signed ``assertion`` (checks 1 to 6 above).

        ``client_id`` is the request's own ``client_id`` parameter, if it sent one. Every failure
        raises ``InvalidClient("client authentication failed")``; the reason goes to the
        ``embedauth_token_denied`` hook. A storage failure raises ``StorageError`` as usual: it says
        nothing about the assertion.
        """
        tenant = None
        try:
            return self._check_assertion(assertion, client_id)
        except jws.Refused as exc:
            reason, claimed = exc.reason, client_id
        except _Denied as exc:
            reason, claimed = exc.reason, exc.client_id if exc.client_id is not None else client_id
            tenant = exc.tenant
        raise self._deny(claimed, f"client assertion: {reason}", InvalidClient(FAILED), tenant=tenant)

    # ------------------------------------------------------------------ the checks, in order

    def _check_assertion(
        self, assertion: str, form_client_id: str | None
    ) -> tuple[Registration, CertificateCredential]:
        # 1. shape and header, before anything costly
        token = jws.parse(assertion, max_bytes=self._settings.max_token_bytes)
        alg = token.header["alg"]
        if alg not in ASSERTION_ALGORITHMS:
            raise _Denied(f"algorithm {alg[:32]!r} is not accepted")
        thumbprint, kid = token.header.get("x5t#S256"), token.header.get("kid")
        if thumbprint is not None and not isinstance(thumbprint, str):
            raise _Denied("x5t#S256 header is not a string")
        if kid is not None and not isinstance(kid, str):
            raise _Denied("kid header is not a string")

        # 2. which client: read, not trusted, until the signature checks out
        unverified = token.payload()
        sub = unverified.get("sub")
        if not is_client_id(sub):
            raise _Denied("sub is missing or not a client id")
        if form_client_id is not None and form_client_id != sub:
            raise _Denied("client_id parameter differs from the assertion's sub", form_client_id)
        registration = self._registrations.get(sub)
        if registration is None:
            raise _Denied("unknown client", sub)

        try:
            # 3 and 4. which key, and the signature
            certificate = self._signer(registration, token, alg, thumbprint, kid)

            # 5. the claims, now trusted to be the client's
            claims = token.payload()
            exp = self._check_claims(claims, registration.client_id)

            # 6. replay, last: only an otherwise good assertion uses up its jti
            key = f"assertion:{registration.client_id}:{claims['jti']}"
            if not self._storage.consume_once(key, expires_at=from_timestamp(exp + self._settings.leeway)):
                raise _Denied("jti already used (replay)", sub)
        except _Denied as exc:
            exc.tenant = registration.tenant
            raise
        return registration, certificate

    def _signer(
        self,
        registration: Registration,
        token: jws.Compact,
        alg: str,
        thumbprint: str | None,
        kid: str | None,
    ) -> CertificateCredential:
        """The live certificate whose key fits ``alg`` and verifies the signature."""
        client_id = registration.client_id
        certificates: Sequence[CertificateCredential] = registration.certificates
        if thumbprint is not None:
            certificates = [c for c in certificates if c.thumbprint == thumbprint]
        elif kid is not None:
            certificates = [c for c in certificates if kid in (c.id, c.thumbprint)]
        if not certificates:
            named = "x5t#S256" if thumbprint is not None else "kid" if kid is not None else None
            raise _Denied(
                f"no certificate matches the {named} header" if named else "no certificate", client_id
            )
        now = utcnow(self._clock)
        live = [c for c in certificates if c.is_live(now)]
        if not live:
            raise _Denied("certificate expired or not yet valid", client_id)
        fitting = 0
        for certificate in live:
            public_key = self._public_key(certificate)
            if public_key is None:
                continue
            try:
                # Both spellings of an ECDSA signature: clients sign high or low S, and a second
                # spelling of an assertion is useless since its jti is consumed once.
                verify = jws.verifier(alg, public_key, low_s_only=False)
            except jws.Refused:
                continue  # the key is of another kind than alg: not this one
            fitting += 1
            if verify(token.signature, token.signing_input):
                return certificate
        if not fitting:
            raise _Denied(f"no live certificate has a key for {alg}", client_id)
        raise _Denied("signature does not verify", client_id)

    def _public_key(self, certificate: CertificateCredential) -> PublicKeyTypes | None:
        cache_key = (certificate.id, certificate.thumbprint)
        key = self._keys.get(cache_key)
        if key is None:
            try:
                key = serialization.load_pem_public_key(certificate.public_key_pem.encode("ascii"))
            except (ValueError, UnicodeError, UnsupportedAlgorithm):
                return None  # a damaged stored key verifies nothing (certificates.py stored it sound)
            self._keys.put(cache_key, key)
        return key

    def _check_claims(self, claims: Mapping[str, Any], client_id: str) -> float:
        """RFC 7523 §3 on signed claims; returns ``exp``."""
        leeway = self._settings.leeway
        now = self._clock()

        def deny(reason: str) -> _Denied:
            return _Denied(reason, client_id)

        if claims.get("iss") != client_id:
            raise deny("iss is not the client id")
        if claims.get("sub") != client_id:  # read before the signature; checked again as signed
            raise deny("sub is not the client id")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if not audiences or not all(isinstance(a, str) for a in audiences):
            raise deny("aud is missing or not a string or a list of strings")
        if self._audiences.isdisjoint(audiences):
            raise deny("aud names neither the token endpoint nor the issuer")
        if "exp" not in claims:
            raise deny("exp is missing")
        exp = claims["exp"]
        if not jws.is_numeric_date(exp):
            raise deny("exp is not a number")
        if now >= exp + leeway:
            raise deny("expired")
        if exp > now + self._settings.assertion_max_lifetime + leeway:
            raise deny("exp is further ahead than the longest assertion lifetime allowed")
        if "nbf" in claims:
            if not jws.is_numeric_date(claims["nbf"]):
                raise deny("nbf is not a number")
            if claims["nbf"] > now + leeway:
                raise deny("not valid yet (nbf)")
        if "iat" in claims:
            if not jws.is_numeric_date(claims["iat"]):
                raise deny("iat is not a number")
            if claims["iat"] > now + leeway:
                raise deny("issued in the future (iat)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise deny("jti is missing")
        # Printable (no control characters, no lone surrogates) so any backend can store the key.
        if len(jti) > MAX_JTI_LENGTH or not jti.isprintable():
            raise deny("jti is too long or not printable")
        return float(exp)

    # ------------------------------------------------------------------ usability

    def _check_usable(self, registration: Registration, credential: Credential) -> None:
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
        if reason is not None:
            raise self._deny(
                registration.client_id, reason, InvalidClient(reason), tenant=registration.tenant
            )

    def _deny(
        self, client_id: str | None, reason: str, error: InvalidClient, *, tenant: str | None = None
    ) -> InvalidClient:
        """``error``, its refusal reported to the ``embedauth_token_denied`` hook and carried on it
        (for the audit trail: never sent)."""
        self._hook.embedauth_token_denied(client_id=client_id, reason=reason)
        error.internal_reason, error.refused_client_id, error.refused_tenant = reason, client_id, tenant
        return error
