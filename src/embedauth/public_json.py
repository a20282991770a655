"""The public JSON form of each model: what the CLI's ``--json`` and the management API return.

One function per model, each the one place its public shape is written.

Hashes, encrypted keys and public-key material never appear here; a plaintext secret appears only
in :func:`created_secret`'s output, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from embedauth.clock import isoformat
from embedauth.models import (
    CertificateCredential,
    CreatedRefreshToken,
    CreatedSecret,
    Permission,
    RefreshToken,
    Registration,
    SecretCredential,
    SigningKey,
)

__all__ = [
    "certificate",
    "created_refresh_token",
    "created_secret",
    "permission",
    "refresh_token",
    "registration",
    "signing_key",
    "time",
]


def time(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, to the millisecond (:func:`embedauth.clock.isoformat`), or None."""
    return None if moment is None else isoformat(moment)


def permission(p: Permission) -> dict[str, Any]:
    """A catalog entry."""
    return {
        "name": p.name,
        "description": p.description,
        "access": p.access.value,
        "created_at": time(p.created_at),
    }


def secret(s: SecretCredential) -> dict[str, Any]:
    """A secret credential: its id, hint and dates; never its hash."""
    return {"id": s.id, "hint": s.hint, "created_at": time(s.created_at), "expires_at": time(s.expires_at)}


def certificate(c: CertificateCredential) -> dict[str, Any]:
    """A certificate credential's facts; never its public key material."""
    return {
        "id": c.id,
        "thumbprint": c.thumbprint,
        "subject": c.subject,
        "key_type": c.key_type,
        "not_before": time(c.not_before),
        "not_after": time(c.not_after),
        "created_at": time(c.created_at),
        "expires_at": time(c.expires_at),
    }


def registration(r: Registration) -> dict[str, Any]:
    """A registration with its credentials (the object of ``show --json`` and ``GET …/{client_id}``)."""
    return {
        "client_id": r.client_id,
        "tenant": r.tenant,
        "name": r.name,
        "description": r.description,
        "scopes": list(r.scopes),
        "customer_scope": str(r.customer_scope),
        "enabled": r.enabled,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
        "last_used_at": time(r.last_used_at),
        "expires_at": time(r.expires_at),
        "registration_expires_at": time(r.registration_expires_at),
        "secrets": [secret(s) for s in r.secrets],
        "certificates": [certificate(c) for c in r.certificates],
    }


def created_secret(created: CreatedSecret) -> dict[str, Any]:
    """A registration with its new secret: the one time a client secret appears."""
    return registration(created.registration) | {
        "client_secret": created.client_secret,
        "secret_id": created.credential.id,
        "secret_expires_at": time(created.credential.expires_at),
    }


def refresh_token(t: RefreshToken) -> dict[str, Any]:
    """A refresh token's record; never its value or hash."""
    return {
        "id": t.id,
        "user": t.user,
        "tenant": t.tenant,
        "scopes": list(t.scopes),
        "hint": t.hint,
        "created_at": time(t.created_at),
        "last_used_at": time(t.last_used_at),
        "revoked_at": time(t.revoked_at),
    }


def created_refresh_token(created: CreatedRefreshToken) -> dict[str, Any]:
    """A new refresh token's record with its value: the one time it appears."""
    return refresh_token(created.record) | {"refresh_token": created.refresh_token}


def signing_key(k: SigningKey) -> dict[str, Any]:
    """Public fields only: never the private key, nor the JWK (that is in the JWKS)."""
    return {
        "kid": k.kid,
        "alg": k.alg,
        "created_at": time(k.created_at),
        "activates_at": time(k.activates_at),
        "retires_at": time(k.retires_at),
        "expires_at": time(k.expires_at),
    }
