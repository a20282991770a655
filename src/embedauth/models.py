"""The values embedauth stores and returns: frozen dataclasses, no behaviour beyond derived views.

Secret material never appears in a ``repr``: hashes and private keys are ``repr=False``, and the
one value that holds a plaintext secret (:class:`CreatedSecret`) hides it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "DELETED_GENERATION",
    "Access",
    "App",
    "AuditRecord",
    "CertificateCredential",
    "Connection",
    "CreatedRefreshToken",
    "CreatedSecret",
    "CustomerScope",
    "CustomerScopeKind",
    "Page",
    "Permission",
    "Principal",
    "RefreshToken",
    "Registration",
    "Revocation",
    "RevocationHead",
    "RevocationKind",
    "SecretCredential",
    "SigningKey",
    "TokenResponse",
]

T = TypeVar("T")


class Access(StrEnum):
    """Whether a permission reads or changes data (shown to admins when they pick permissions)."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of the product's permission catalog; its ``name`` is an OAuth scope."""

    name: str
    description: str
    access: Access
    created_at: datetime


class CustomerScopeKind(StrEnum):
    """How a customer scope limits a registration: every customer, some customers, or some groups."""

    ALL = "all"
    CUSTOMERS = "customers"
    GROUPS = "groups"


@dataclass(frozen=True, slots=True)
class CustomerScope:
    """Which of the tenant's customers a registration may reach.

    ``all``, or a non-empty set of customer ids, or a non-empty set of customer group ids. Its text
    form is ``all``, ``customers:a,b`` or ``groups:g1,g2`` (parsed by
    :func:`embedauth.validation.parse_customer_scope`).
    """

    kind: CustomerScopeKind = CustomerScopeKind.ALL
    ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind is CustomerScopeKind.ALL:
            return "all"
        return f"{self.kind.value}:{','.join(self.ids)}"

    def to_json(self) -> dict[str, Any]:
        """``{"kind": ..., "ids": [...]}``, the stored form."""
        return {"kind": self.kind.value, "ids": list(self.ids)}

    def includes(self, other: CustomerScope) -> bool:
        """Whether every customer ``other`` reaches is reached by this scope too."""
        if self.kind is CustomerScopeKind.ALL:
            return True
        return self.kind is other.kind and set(self.ids) >= set(other.ids)


@dataclass(frozen=True, slots=True)
class SecretCredential:
    """A client secret as stored: an argon2id hash and a short hint, never the secret."""

    id: str
    hint: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    #: When it was last presented successfully (written behind, coalesced; None: never).
    last_used_at: datetime | None = None
    #: When a rotation with a grace period replaced it; it then works until ``expires_at`` only.
    replaced_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        """Whether the secret may be used at ``now`` (before its expiry)."""
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class CertificateCredential:
    """A certificate as stored: its public key and facts, never the certificate's private key.

    ``thumbprint`` is the base64url SHA-256 of the DER certificate (the JOSE ``x5t#S256``).
    """

    id: str
    thumbprint: str
    subject: str
    key_type: str
    public_key_pem: str
    not_before: datetime
    not_after: datetime
    created_at: datetime
    #: When it last signed an accepted client assertion (written behind, coalesced; None: never).
    last_used_at: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        """When the certificate stops being valid (its ``not_after``)."""
        return self.not_after

    def is_live(self, now: datetime) -> bool:
        """Whether the certificate is within its validity at ``now``."""
        return self.not_before <= now < self.not_after


@dataclass(frozen=True, slots=True)
class Registration:
    """An app registration: a client of the product's API, owned by a tenant.

    ``version`` grows by one with every change and is what storage compares before it writes, so
    concurrent changes (two secret rotations, say) never overwrite one another. ``generation``
    grows with every pause, restore and narrowing of its rights; each access token carries the
    generation it was issued under, and a pause or narrowing revokes the generations below the new
    one (see :mod:`embedauth.tokens.revocation`).
    ``registration_expires_at`` is the registration's own expiry (``None``: never);
    :attr:`expires_at` is when it stops working, counting its credentials too.
    """

    client_id: str
    tenant: str
    name: str
    description: str
    scopes: tuple[str, ...]
    customer_scope: CustomerScope
    enabled: bool
    created_at: datetime
    updated_at: datetime
    registration_expires_at: datetime | None = None
    last_used_at: datetime | None = None
    secrets: tuple[SecretCredential, ...] = ()
    certificates: tuple[CertificateCredential, ...] = ()
    version: int = 1
    generation: int = 1

    @property
    def expires_at(self) -> datetime | None:
        """When it stops working: the earlier of its own expiry and its last credential's; its
        creation when it has no credential at all (it cannot authenticate); None: never."""
        credential_ends = [c.expires_at for c in self.credentials()]
        if not credential_ends:
            return self.created_at
        ends = [max(credential_ends)]
        if self.registration_expires_at is not None:
            ends.append(self.registration_expires_at)
        return min(ends)

    def credentials(self) -> Iterator[SecretCredential | CertificateCredential]:
        """Every secret, then every certificate."""
        yield from self.secrets
        yield from self.certificates

    def live_secrets(self, now: datetime) -> tuple[SecretCredential, ...]:
        """The secrets not yet expired at ``now``."""
        return tuple(s for s in self.secrets if s.is_live(now))

    def is_active(self, now: datetime) -> bool:
        """Enabled and not past its own expiry (credentials are checked one by one)."""
        return self.enabled and (self.registration_expires_at is None or now < self.registration_expires_at)


@dataclass(frozen=True, slots=True)
class App:
    """A multi-tenant app: defined once by a developer of the ``owner`` tenant, with the permissions
    it requests, and connected by each tenant that uses it (:class:`Connection`).

    ``allowed_tenants`` are the tenants that may connect it (``None``: any tenant). ``version``
    grows with every change, compared before each write as a registration's is.
    """

    app_id: str
    owner: str
    name: str
    description: str
    scopes: tuple[str, ...]
    allowed_tenants: tuple[str, ...] | None
    created_at: datetime
    updated_at: datetime
    version: int = 1

    def may_connect(self, tenant: str) -> bool:
        """Whether ``tenant`` may connect this app."""
        return self.allowed_tenants is None or tenant in self.allowed_tenants


@dataclass(frozen=True, slots=True)
class Connection:
    """A tenant's connection of an :class:`App`: the tenant's own registration (``client_id``), which
    holds the permissions the tenant's admin allowed, and its own secrets. Pausing the connection
    is disabling that registration; deleting the registration ends the connection."""

    app_id: str
    tenant: str
    client_id: str
    connected_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedSecret:
    """A new client secret: the only value that ever holds it in plain text."""

    registration: Registration
    credential: SecretCredential
    client_secret: str = field(repr=False)

    @property
    def client_id(self) -> str:
        """The registration's client ID."""
        return self.registration.client_id


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A person's long-lived API refresh token as stored (argon2id hash and hint)."""

    id: str
    user: str
    scopes: tuple[str, ...]
    hint: str
    token_hash: str = field(repr=False)
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    tenant: str | None = None
    customer_scope: CustomerScope = CustomerScope()

    def idle_since(self) -> datetime:
        """Since when the token has not been used (its creation, if never)."""
        return self.last_used_at or self.created_at


@dataclass(frozen=True, slots=True)
class CreatedRefreshToken:
    """A new refresh token: the only value that ever holds it in plain text."""

    record: RefreshToken
    refresh_token: str = field(repr=False)

    @property
    def id(self) -> str:
        """The new refresh token's id."""
        return self.record.id


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A token-signing key in the key ring.

    ``private_key`` is PKCS#8 DER, encrypted with the key-encryption key when one is configured.
    The key is published from ``created_at``, signs from ``activates_at`` until ``retires_at``, and
    is published until ``expires_at`` (the last token it signed has expired).
    """

    kid: str
    alg: str
    public_jwk: str
    private_key: bytes = field(repr=False)
    encrypted: bool
    created_at: datetime
    activates_at: datetime
    retires_at: datetime | None = None
    expires_at: datetime | None = None


class RevocationKind(StrEnum):
    """What a revocation entry's subject is, and so which tokens it refuses."""

    #: A client ID: tokens of a registration generation below :attr:`Revocation.generation`.
    REGISTRATION = "registration"
    #: A secret, certificate or refresh-token id: every token obtained with it.
    CREDENTIAL = "credential"
    #: An access token's ``jti``; :attr:`Revocation.client_id` and :attr:`Revocation.issued_at` say
    #: whose and when, so that many of one client's can be coalesced into one :attr:`CLIENT_TOKENS`.
    ACCESS_TOKEN = "access_token"  # noqa: S105 - a name, not a secret
    #: A client ID: its tokens issued at or before :attr:`Revocation.issued_at` (plus the skew margin).
    CLIENT_TOKENS = "client_tokens"
    #: A signing key's ``kid``: every token it signed (an emergency withdrawal).
    SIGNING_KEY = "signing_key"


#: The generation of a :attr:`RevocationKind.REGISTRATION` entry that refuses every token: deletion.
DELETED_GENERATION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Revocation:
    """One fact every verifier must know: some tokens are no longer accepted.

    There is one entry per ``(kind, subject)``: adding another merges into it (the highest
    ``generation`` and ``issued_at``, the latest ``expires_at``), so repeated pauses or revocations
    never grow the state. Facts that need no clock are preferred: a registration's generation, a
    credential's or token's id. ``expires_at`` is when no token the entry refuses can be unexpired
    any more, so storage forgets it then. ``seq`` is assigned by storage and orders the change feed.
    """

    kind: RevocationKind
    subject: str
    expires_at: datetime
    generation: int = 0
    client_id: str | None = None
    issued_at: int = 0
    seq: int = 0

    def merged(self, other: Revocation) -> Revocation:
        """This entry and ``other`` (of the same kind and subject) as one."""
        return dataclasses.replace(
            self,
            expires_at=max(self.expires_at, other.expires_at),
            generation=max(self.generation, other.generation),
            client_id=self.client_id or other.client_id,
            issued_at=max(self.issued_at, other.issued_at),
            seq=max(self.seq, other.seq),
        )


@dataclass(frozen=True, slots=True)
class RevocationHead:
    """Where a store's revocation log stands.

    ``epoch`` changes when the log starts anew (an empty store), ``seq`` is the last entry's, and
    ``max_token_age`` the longest any issuer of the deployment may let a token be accepted (every
    issuer raises it to its own before signing; every entry outlives it).
    """

    epoch: str
    seq: int
    max_token_age: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a verified access token."""

    subject: str
    client_id: str
    tenant: str | None
    scopes: frozenset[str]
    customer_scope: CustomerScope
    credential_id: str | None
    token_id: str
    expires_at: float
    issued_at: float
    claims: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    def has_scopes(self, *needed: str) -> bool:
        """Whether the token carries every one of ``needed``."""
        return self.scopes.issuperset(needed)


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str = field(repr=False)
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    refresh_token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 response body."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit trail: who did what, to which registration, when, from where.

    ``actor`` is who (an admin's identity, ``cli:USER``, the client for token events,
    ``embedauth:sweep`` for the expiry sweep); ``action`` what (``registration.create``,
    ``token.issued``, ``token.refused``, ``notice.expiring``…); ``tenant`` and ``client_id`` the
    registration it concerns (when there is one), ``target`` what else it acted on (a permission,
    a refresh token, a credential); ``source`` from where (a remote address, ``cli``, ``sweep``);
    ``outcome`` ``success``, ``refused`` or ``failed``; ``reason`` the internal reason of a
    refusal (the stored log only: never sent to the OAuth caller); ``detail`` a few facts that are
    never secret. Nothing in a record is a secret, a hash or a token.
    """

    id: str
    at: datetime
    actor: str
    action: str
    tenant: str | None = None
    client_id: str | None = None
    target: str | None = None
    source: str | None = None
    outcome: str = "success"
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, with the total count of matches."""

    items: Sequence[T]
    total: int
    offset: int
    limit: int
