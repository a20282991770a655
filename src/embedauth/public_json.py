"""The public JSON form of each model: what the CLI's ``--json`` and the management API return.

One pydantic model per shape, each the one place that shape is written: the functions below build
the JSON from it, and the management API's OpenAPI document takes its schemas from the same
classes, so the document cannot drift from what is sent.

Hashes, encrypted keys and public-key material never appear here; a plaintext secret appears only
in :class:`CreatedSecret` (and a refresh token's value in :class:`CreatedRefreshToken`), once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from embedauth import models
from embedauth.clock import isoformat
from embedauth.registry.apps import AppConnection as _AppConnection
from embedauth.registry.apps import Connected as _Connected

__all__ = [
    "App",
    "AppConnection",
    "AuditRecord",
    "Certificate",
    "CertificateAdded",
    "Connected",
    "CreatedRefreshToken",
    "CreatedSecret",
    "Permission",
    "RefreshToken",
    "Registration",
    "Secret",
    "SigningKey",
    "Time",
    "audit_record",
    "certificate",
    "certificate_added",
    "created_refresh_token",
    "created_secret",
    "permission",
    "refresh_token",
    "registration",
    "signing_key",
    "time",
]

#: A time as every JSON body carries it: ISO 8601 UTC with a ``Z``, to the millisecond.
Time = Annotated[
    datetime,
    PlainSerializer(isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def time(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, to the millisecond (:func:`embedauth.clock.isoformat`), or None."""
    return None if moment is None else isoformat(moment)


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The JSON object, as plain Python values."""
        return self.model_dump(mode="json")


class Permission(_Shape):
    """A catalog entry."""

    name: str
    description: str
    access: Literal["read", "write"]
    created_at: Time

    @classmethod
    def of(cls, p: models.Permission) -> Permission:
        """The shape of ``p``."""
        return cls(name=p.name, description=p.description, access=p.access.value, created_at=p.created_at)


class Secret(_Shape):
    """A secret credential: its id, hint and dates; never its hash.

    ``last_used_at`` is its last successful use (written behind: up to ``last_used_interval``
    late; null: never); ``replaced_at`` is set when a rotation with a grace period replaced it, and
    it then works until ``expires_at`` only.
    """

    id: str
    hint: str
    created_at: Time
    expires_at: Time
    last_used_at: Time | None
    replaced_at: Time | None

    @classmethod
    def of(cls, s: models.SecretCredential) -> Secret:
        """The shape of ``s``."""
        return cls(
            id=s.id,
            hint=s.hint,
            created_at=s.created_at,
            expires_at=s.expires_at,
            last_used_at=s.last_used_at,
            replaced_at=s.replaced_at,
        )


class Certificate(_Shape):
    """A certificate credential's facts; never its public key material. ``last_used_at``: when it
    last signed an accepted client assertion (written behind; null: never)."""

    id: str
    thumbprint: str
    subject: str
    key_type: str
    not_before: Time
    not_after: Time
    created_at: Time
    expires_at: Time
    last_used_at: Time | None

    @classmethod
    def of(cls, c: models.CertificateCredential) -> Certificate:
        """The shape of ``c``."""
        return cls(
            id=c.id,
            thumbprint=c.thumbprint,
            subject=c.subject,
            key_type=c.key_type,
            not_before=c.not_before,
            not_after=c.not_after,
            created_at=c.created_at,
            expires_at=c.expires_at,
            last_used_at=c.last_used_at,
        )


class Registration(_Shape):
    """A registration with its credentials (``show --json``, ``GET …/registrations/{client_id}``).

    ``expires_at`` is when it stops working (its own expiry or its last credential's, whichever
    comes first); ``registration_expires_at`` its own expiry alone.
    """

    client_id: str
    tenant: str
    name: str
    description: str
    scopes: list[str]
    customer_scope: str
    enabled: bool
    created_at: Time
    updated_at: Time
    last_used_at: Time | None
    expires_at: Time | None
    registration_expires_at: Time | None
    secrets: list[Secret]
    certificates: list[Certificate]

    @classmethod
    def fields_of(cls, r: models.Registration) -> dict[str, Any]:
        """The field values of ``r`` (for the shapes that extend this one)."""
        return {
            "client_id": r.client_id,
            "tenant": r.tenant,
            "name": r.name,
            "description": r.description,
            "scopes": list(r.scopes),
            "customer_scope": str(r.customer_scope),
            "enabled": r.enabled,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "last_used_at": r.last_used_at,
            "expires_at": r.expires_at,
            "registration_expires_at": r.registration_expires_at,
            "secrets": [Secret.of(s) for s in r.secrets],
            "certificates": [Certificate.of(c) for c in r.certificates],
        }

    @classmethod
    def of(cls, r: models.Registration) -> Registration:
        """The shape of ``r``."""
        return cls(**cls.fields_of(r))


class CreatedSecret(Registration):
    """A registration with its new secret: the one time a client secret appears."""

    client_secret: str
    secret_id: str
    secret_expires_at: Time

    @classmethod
    def of_created(cls, created: models.CreatedSecret) -> CreatedSecret:
        """The shape of ``created``."""
        return cls(
            **Registration.fields_of(created.registration),
            client_secret=created.client_secret,
            secret_id=created.credential.id,
            secret_expires_at=created.credential.expires_at,
        )


class CertificateAdded(Registration):
    """A registration and the certificate just added to it."""

    certificate: Certificate

    @classmethod
    def of_added(cls, r: models.Registration, c: models.CertificateCredential) -> CertificateAdded:
        """The shape of ``r`` with ``c``."""
        return cls(**Registration.fields_of(r), certificate=Certificate.of(c))


class App(_Shape):
    """A multi-tenant app: who owns it, what it requests, who may connect it (``null``: anyone)."""

    app_id: str
    owner: str
    name: str
    description: str
    scopes: list[str]
    allowed_tenants: list[str] | None
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, a: models.App) -> App:
        """The shape of ``a``."""
        return cls(
            app_id=a.app_id,
            owner=a.owner,
            name=a.name,
            description=a.description,
            scopes=list(a.scopes),
            allowed_tenants=None if a.allowed_tenants is None else list(a.allowed_tenants),
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


class AppConnection(_Shape):
    """A tenant's connection of an app, as its developer and the tenant see it: which tenant, the
    permissions allowed, paused or not, when last used; never a secret."""

    app_id: str
    tenant: str
    client_id: str
    scopes: list[str]
    enabled: bool
    connected_by: str
    connected_at: Time
    last_used_at: Time | None

    @classmethod
    def of(cls, link: _AppConnection) -> AppConnection:
        """The shape of ``link``."""
        c, r = link.connection, link.registration
        return cls(
            app_id=c.app_id,
            tenant=c.tenant,
            client_id=c.client_id,
            scopes=list(r.scopes),
            enabled=r.enabled,
            connected_by=c.connected_by,
            connected_at=c.created_at,
            last_used_at=r.last_used_at,
        )


class Connected(CreatedSecret):
    """A new connection: its registration and first secret (shown only here), and the app's id."""

    app_id: str

    @classmethod
    def of_connected(cls, connected: _Connected) -> Connected:
        """The shape of ``connected``."""
        created = connected.created
        return cls(
            **Registration.fields_of(created.registration),
            client_secret=created.client_secret,
            secret_id=created.credential.id,
            secret_expires_at=created.credential.expires_at,
            app_id=connected.app.app_id,
        )


class RefreshToken(_Shape):
    """A refresh token's record; never its value or hash."""

    id: str
    user: str
    tenant: str | None
    scopes: list[str]
    hint: str
    created_at: Time
    last_used_at: Time | None
    revoked_at: Time | None

    @classmethod
    def fields_of(cls, t: models.RefreshToken) -> dict[str, Any]:
        """The field values of ``t``."""
        return {
            "id": t.id,
            "user": t.user,
            "tenant": t.tenant,
            "scopes": list(t.scopes),
            "hint": t.hint,
            "created_at": t.created_at,
            "last_used_at": t.last_used_at,
            "revoked_at": t.revoked_at,
        }

    @classmethod
    def of(cls, t: models.RefreshToken) -> RefreshToken:
        """The shape of ``t``."""
        return cls(**cls.fields_of(t))


class CreatedRefreshToken(RefreshToken):
    """A new refresh token's record with its value: the one time it appears."""

    refresh_token: str

    @classmethod
    def of_created(cls, created: models.CreatedRefreshToken) -> CreatedRefreshToken:
        """The shape of ``created``."""
        return cls(**RefreshToken.fields_of(created.record), refresh_token=created.refresh_token)


class SigningKey(_Shape):
    """Public fields only: never the private key, nor the JWK (that is in the JWKS)."""

    kid: str
    alg: str
    created_at: Time
    activates_at: Time
    retires_at: Time | None
    expires_at: Time | None

    @classmethod
    def of(cls, k: models.SigningKey) -> SigningKey:
        """The shape of ``k``."""
        return cls(
            kid=k.kid,
            alg=k.alg,
            created_at=k.created_at,
            activates_at=k.activates_at,
            retires_at=k.retires_at,
            expires_at=k.expires_at,
        )


class AuditRecord(_Shape):
    """One record of the audit trail (``GET /audit``, ``embedauth audit --json``): who (``actor``),
    what (``action``), which registration (``tenant``, ``client_id``) or other ``target``, when
    (``at``), from where (``source``), how it ended (``outcome``: success, refused, failed), the
    internal ``reason`` of a refusal, and a few non-secret ``detail`` values."""

    id: str
    at: Time
    actor: str
    action: str
    tenant: str | None
    client_id: str | None
    target: str | None
    source: str | None
    outcome: str
    reason: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, r: models.AuditRecord) -> AuditRecord:
        """The shape of ``r``."""
        return cls(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            tenant=r.tenant,
            client_id=r.client_id,
            target=r.target,
            source=r.source,
            outcome=r.outcome,
            reason=r.reason,
            detail=dict(r.detail),
        )


def audit_record(r: models.AuditRecord) -> dict[str, Any]:
    """One audit record."""
    return AuditRecord.of(r).dump()


def permission(p: models.Permission) -> dict[str, Any]:
    """A catalog entry."""
    return Permission.of(p).dump()


def certificate(c: models.CertificateCredential) -> dict[str, Any]:
    """A certificate credential's facts."""
    return Certificate.of(c).dump()


def certificate_added(r: models.Registration, c: models.CertificateCredential) -> dict[str, Any]:
    """A registration and the certificate just added to it."""
    return CertificateAdded.of_added(r, c).dump()


def registration(r: models.Registration) -> dict[str, Any]:
    """A registration with its credentials."""
    return Registration.of(r).dump()


def created_secret(created: models.CreatedSecret) -> dict[str, Any]:
    """A registration with its new secret."""
    return CreatedSecret.of_created(created).dump()


def refresh_token(t: models.RefreshToken) -> dict[str, Any]:
    """A refresh token's record."""
    return RefreshToken.of(t).dump()


def created_refresh_token(created: models.CreatedRefreshToken) -> dict[str, Any]:
    """A new refresh token's record with its value."""
    return CreatedRefreshToken.of_created(created).dump()


def signing_key(k: models.SigningKey) -> dict[str, Any]:
    """A signing key's public fields."""
    return SigningKey.of(k).dump()
