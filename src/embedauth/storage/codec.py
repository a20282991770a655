"""The stored form of every model as JSON-ready dicts, for backends that store documents.

Complete (hashes and encrypted keys included): this is storage's private form, never an API
response; the public form is in :mod:`embedauth.public_json`. Times are ISO 8601 UTC with milliseconds.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from embedauth.clock import from_timestamp, isoformat, to_timestamp
from embedauth.models import (
    Access,
    App,
    AuditRecord,
    CertificateCredential,
    Connection,
    CustomerScope,
    CustomerScopeKind,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    RevocationKind,
    SecretCredential,
    SigningKey,
)
from embedauth.validation import parse_customer_scope

__all__ = [
    "app_from_dict",
    "app_to_dict",
    "audit_record_from_dict",
    "audit_record_to_dict",
    "connection_from_dict",
    "connection_to_dict",
    "dump_time",
    "load_time",
    "permission_from_dict",
    "permission_to_dict",
    "refresh_token_from_dict",
    "refresh_token_to_dict",
    "registration_from_dict",
    "registration_to_dict",
    "revocation_from_dict",
    "revocation_to_dict",
    "signing_key_from_dict",
    "signing_key_to_dict",
]


def dump_time(moment: datetime | None) -> str | None:
    """A time as stored: ISO 8601 UTC to the millisecond, or None."""
    return None if moment is None else isoformat(moment)


def load_time(text: str | None) -> datetime | None:
    """A stored time back to an aware datetime, or None."""
    return None if text is None else datetime.fromisoformat(text)


def _time(text: str) -> datetime:
    moment = load_time(text)
    assert moment is not None
    return moment


def permission_to_dict(p: Permission) -> dict[str, Any]:
    """A permission as its stored document."""
    return {
        "name": p.name,
        "description": p.description,
        "access": p.access.value,
        "created_at": dump_time(p.created_at),
    }


def permission_from_dict(d: dict[str, Any]) -> Permission:
    """The permission a stored document holds."""
    return Permission(d["name"], d["description"], Access(d["access"]), _time(d["created_at"]))


def _secret_to_dict(s: SecretCredential) -> dict[str, Any]:
    return {
        "id": s.id,
        "hint": s.hint,
        "secret_hash": s.secret_hash,
        "created_at": dump_time(s.created_at),
        "expires_at": dump_time(s.expires_at),
        "last_used_at": dump_time(s.last_used_at),
        "replaced_at": dump_time(s.replaced_at),
    }


def _secret_from_dict(d: dict[str, Any]) -> SecretCredential:
    return SecretCredential(
        d["id"],
        d["hint"],
        d["secret_hash"],
        _time(d["created_at"]),
        _time(d["expires_at"]),
        last_used_at=load_time(d.get("last_used_at")),
        replaced_at=load_time(d.get("replaced_at")),
    )


def _certificate_to_dict(c: CertificateCredential) -> dict[str, Any]:
    return {
        "id": c.id,
        "thumbprint": c.thumbprint,
        "subject": c.subject,
        "key_type": c.key_type,
        "public_key_pem": c.public_key_pem,
        "not_before": dump_time(c.not_before),
        "not_after": dump_time(c.not_after),
        "created_at": dump_time(c.created_at),
        "last_used_at": dump_time(c.last_used_at),
    }


def _certificate_from_dict(d: dict[str, Any]) -> CertificateCredential:
    return CertificateCredential(
        id=d["id"],
        thumbprint=d["thumbprint"],
        subject=d["subject"],
        key_type=d["key_type"],
        public_key_pem=d["public_key_pem"],
        not_before=_time(d["not_before"]),
        not_after=_time(d["not_after"]),
        created_at=_time(d["created_at"]),
        last_used_at=load_time(d.get("last_used_at")),
    )


def registration_to_dict(r: Registration) -> dict[str, Any]:
    """A registration with its credentials as its stored document."""
    return {
        "client_id": r.client_id,
        "tenant": r.tenant,
        "name": r.name,
        "description": r.description,
        "scopes": list(r.scopes),
        "customer_scope": r.customer_scope.to_json(),
        "enabled": r.enabled,
        "created_at": dump_time(r.created_at),
        "updated_at": dump_time(r.updated_at),
        "registration_expires_at": dump_time(r.registration_expires_at),
        "last_used_at": dump_time(r.last_used_at),
        "secrets": [_secret_to_dict(s) for s in r.secrets],
        "certificates": [_certificate_to_dict(c) for c in r.certificates],
        "version": r.version,
        "generation": r.generation,
    }


def registration_from_dict(d: dict[str, Any]) -> Registration:
    """The registration a stored document holds."""
    scope = d["customer_scope"]
    return Registration(
        client_id=d["client_id"],
        tenant=d["tenant"],
        name=d["name"],
        description=d["description"],
        scopes=tuple(d["scopes"]),
        customer_scope=CustomerScope(CustomerScopeKind(scope["kind"]), tuple(scope["ids"])),
        enabled=d["enabled"],
        created_at=_time(d["created_at"]),
        updated_at=_time(d["updated_at"]),
        registration_expires_at=load_time(d["registration_expires_at"]),
        last_used_at=load_time(d["last_used_at"]),
        secrets=tuple(_secret_from_dict(s) for s in d["secrets"]),
        certificates=tuple(_certificate_from_dict(c) for c in d["certificates"]),
        version=d["version"],
        generation=d.get("generation", 1),
    )


def refresh_token_to_dict(t: RefreshToken) -> dict[str, Any]:
    """A refresh token (its hash included) as its stored document."""
    return {
        "id": t.id,
        "user": t.user,
        "scopes": list(t.scopes),
        "hint": t.hint,
        "token_hash": t.token_hash,
        "created_at": dump_time(t.created_at),
        "last_used_at": dump_time(t.last_used_at),
        "revoked_at": dump_time(t.revoked_at),
        "tenant": t.tenant,
        "customer_scope": str(t.customer_scope),
    }


def refresh_token_from_dict(d: dict[str, Any]) -> RefreshToken:
    """The refresh token a stored document holds."""
    return RefreshToken(
        id=d["id"],
        user=d["user"],
        scopes=tuple(d["scopes"]),
        hint=d["hint"],
        token_hash=d["token_hash"],
        created_at=_time(d["created_at"]),
        last_used_at=load_time(d["last_used_at"]),
        revoked_at=load_time(d["revoked_at"]),
        tenant=d["tenant"],
        customer_scope=parse_customer_scope(d.get("customer_scope", "all")),
    )


def signing_key_to_dict(k: SigningKey) -> dict[str, Any]:
    """A signing key (its private key base64, encrypted or not) as its stored document."""
    return {
        "kid": k.kid,
        "alg": k.alg,
        "public_jwk": k.public_jwk,
        "private_key": base64.b64encode(k.private_key).decode("ascii"),
        "encrypted": k.encrypted,
        "created_at": dump_time(k.created_at),
        "activates_at": dump_time(k.activates_at),
        "retires_at": dump_time(k.retires_at),
        "expires_at": dump_time(k.expires_at),
    }


def signing_key_from_dict(d: dict[str, Any]) -> SigningKey:
    """The signing key a stored document holds."""
    return SigningKey(
        kid=d["kid"],
        alg=d["alg"],
        public_jwk=d["public_jwk"],
        private_key=base64.b64decode(d["private_key"]),
        encrypted=d["encrypted"],
        created_at=_time(d["created_at"]),
        activates_at=_time(d["activates_at"]),
        retires_at=load_time(d["retires_at"]),
        expires_at=load_time(d["expires_at"]),
    )


def revocation_to_dict(r: Revocation) -> dict[str, Any]:
    """A revocation entry as its stored document (``expires_ms``: milliseconds, for scripts to compare)."""
    return {
        "kind": r.kind.value,
        "subject": r.subject,
        "expires_ms": int(to_timestamp(r.expires_at) * 1000),
        "generation": r.generation,
        "client_id": r.client_id,
        "issued_at": r.issued_at,
        "seq": r.seq,
    }


def revocation_from_dict(d: dict[str, Any]) -> Revocation:
    """The revocation entry a stored document holds (version 1's ``since`` form included)."""
    if "expires_ms" not in d:  # version 1: a pause "since t" refuses tokens without a generation
        kind = "credential" if d["kind"] == "refresh_token" else d["kind"]
        return Revocation(
            RevocationKind(kind),
            d["subject"],
            _time(d["expires_at"]),
            generation=1 if kind == "registration" else 0,
            seq=d["seq"],
        )
    return Revocation(
        RevocationKind(d["kind"]),
        d["subject"],
        from_timestamp(d["expires_ms"] / 1000),
        generation=int(d["generation"]),
        client_id=d["client_id"] if isinstance(d.get("client_id"), str) else None,
        issued_at=int(d["issued_at"]),
        seq=int(d["seq"]),
    )


def audit_record_to_dict(r: AuditRecord) -> dict[str, Any]:
    """An audit record as its stored document."""
    return {
        "id": r.id,
        "at": dump_time(r.at),
        "actor": r.actor,
        "action": r.action,
        "tenant": r.tenant,
        "client_id": r.client_id,
        "target": r.target,
        "source": r.source,
        "outcome": r.outcome,
        "reason": r.reason,
        "detail": dict(r.detail),
    }


def audit_record_from_dict(d: dict[str, Any]) -> AuditRecord:
    """The audit record a stored document holds."""
    return AuditRecord(
        id=d["id"],
        at=_time(d["at"]),
        actor=d["actor"],
        action=d["action"],
        tenant=d["tenant"],
        client_id=d["client_id"],
        target=d["target"],
        source=d["source"],
        outcome=d["outcome"],
        reason=d["reason"],
        detail=d["detail"] if isinstance(d["detail"], dict) else {},
    )


def app_to_dict(a: App) -> dict[str, Any]:
    """An app as its stored document."""
    return {
        "app_id": a.app_id,
        "owner": a.owner,
        "name": a.name,
        "description": a.description,
        "scopes": list(a.scopes),
        "allowed_tenants": None if a.allowed_tenants is None else list(a.allowed_tenants),
        "created_at": dump_time(a.created_at),
        "updated_at": dump_time(a.updated_at),
        "version": a.version,
    }


def app_from_dict(d: dict[str, Any]) -> App:
    """The app a stored document holds."""
    allowed = d["allowed_tenants"]
    return App(
        app_id=d["app_id"],
        owner=d["owner"],
        name=d["name"],
        description=d["description"],
        scopes=tuple(d["scopes"]),
        allowed_tenants=None if allowed is None else tuple(allowed),
        created_at=_time(d["created_at"]),
        updated_at=_time(d["updated_at"]),
        version=int(d["version"]),
    )


def connection_to_dict(c: Connection) -> dict[str, Any]:
    """A connection as its stored document."""
    return {
        "app_id": c.app_id,
        "tenant": c.tenant,
        "client_id": c.client_id,
        "connected_by": c.connected_by,
        "created_at": dump_time(c.created_at),
    }


def connection_from_dict(d: dict[str, Any]) -> Connection:
    """The connection a stored document holds."""
    return Connection(
        app_id=d["app_id"],
        tenant=d["tenant"],
        client_id=d["client_id"],
        connected_by=d["connected_by"],
        created_at=_time(d["created_at"]),
    )
