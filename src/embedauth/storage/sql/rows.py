"""Rows to models and back, for the tables of :mod:`.schema`.

Times are BIGINT microseconds since the Unix epoch: exact for any aware datetime, and compared and
ordered as integers on every database.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table

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
from embedauth.storage.sql.schema import CERTIFICATES, MAX_ONCE_KEY, SCOPES, SECRETS
from embedauth.validation import parse_customer_scope

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def us_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else us(moment)


def time_from_us(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def time_or_none(value: int | None) -> datetime | None:
    return None if value is None else time_from_us(value)


def once_key(key: str) -> str:
    """The key as stored: verbatim if short, else its digest padded to a length no verbatim key has."""
    if len(key) < MAX_ONCE_KEY:
        return key
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}".ljust(MAX_ONCE_KEY, ".")


def registration_row(r: Registration) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "tenant": r.tenant,
        "name": r.name,
        "description": r.description,
        "customer_scope": r.customer_scope.kind.value,
        "customer_ids": json.dumps(list(r.customer_scope.ids)),
        "enabled": r.enabled,
        "created_at": us(r.created_at),
        "updated_at": us(r.updated_at),
        "registration_expires_at": us_or_none(r.registration_expires_at),
        "last_used_at": us_or_none(r.last_used_at),
        "version": r.version,
        "generation": r.generation,
        "expires_at": us_or_none(r.expires_at),  # derived: what listings sort and filter by
    }


def children_rows(r: Registration) -> dict[Table, list[dict[str, Any]]]:
    cid = r.client_id
    return {
        SCOPES: [{"client_id": cid, "position": i, "permission": s} for i, s in enumerate(r.scopes)],
        SECRETS: [
            {
                "client_id": cid,
                "position": i,
                "id": s.id,
                "hint": s.hint,
                "secret_hash": s.secret_hash,
                "created_at": us(s.created_at),
                "expires_at": us(s.expires_at),
                "last_used_at": us_or_none(s.last_used_at),
                "replaced_at": us_or_none(s.replaced_at),
            }
            for i, s in enumerate(r.secrets)
        ],
        CERTIFICATES: [
            {
                "client_id": cid,
                "position": i,
                "id": c.id,
                "thumbprint": c.thumbprint,
                "subject": c.subject,
                "key_type": c.key_type,
                "public_key_pem": c.public_key_pem,
                "not_before": us(c.not_before),
                "not_after": us(c.not_after),
                "created_at": us(c.created_at),
                "last_used_at": us_or_none(c.last_used_at),
            }
            for i, c in enumerate(r.certificates)
        ],
    }


def secret(row: Row[Any]) -> SecretCredential:
    fields = row._mapping
    return SecretCredential(
        row.id,
        row.hint,
        row.secret_hash,
        time_from_us(row.created_at),
        time_from_us(row.expires_at),
        last_used_at=time_or_none(fields.get("last_used_at")),
        replaced_at=time_or_none(fields.get("replaced_at")),
    )


def certificate(row: Row[Any]) -> CertificateCredential:
    return CertificateCredential(
        id=row.id,
        thumbprint=row.thumbprint,
        subject=row.subject,
        key_type=row.key_type,
        public_key_pem=row.public_key_pem,
        not_before=time_from_us(row.not_before),
        not_after=time_from_us(row.not_after),
        created_at=time_from_us(row.created_at),
        last_used_at=time_or_none(row._mapping.get("last_used_at")),
    )


def permission_row(p: Permission) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "access": p.access.value,
        "created_at": us(p.created_at),
    }


def permission(row: Row[Any]) -> Permission:
    return Permission(row.name, row.description, Access(row.access), time_from_us(row.created_at))


def signing_key_row(k: SigningKey) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "alg": k.alg,
        "public_jwk": k.public_jwk,
        "private_key": k.private_key,
        "encrypted": k.encrypted,
        "created_at": us(k.created_at),
        "activates_at": us(k.activates_at),
        "retires_at": us_or_none(k.retires_at),
        "expires_at": us_or_none(k.expires_at),
    }


def signing_key(row: Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        alg=row.alg,
        public_jwk=row.public_jwk,
        private_key=bytes(row.private_key),
        encrypted=row.encrypted,
        created_at=time_from_us(row.created_at),
        activates_at=time_from_us(row.activates_at),
        retires_at=time_or_none(row.retires_at),
        expires_at=time_or_none(row.expires_at),
    )


def refresh_token_row(t: RefreshToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "user": t.user,
        "scopes": json.dumps(list(t.scopes)),
        "hint": t.hint,
        "token_hash": t.token_hash,
        "created_at": us(t.created_at),
        "last_used_at": us_or_none(t.last_used_at),
        "revoked_at": us_or_none(t.revoked_at),
        "tenant": t.tenant,
        "customer_scope": str(t.customer_scope),
    }


def refresh_token(row: Row[Any]) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        user=row.user,
        scopes=tuple(json.loads(row.scopes)),
        hint=row.hint,
        token_hash=row.token_hash,
        created_at=time_from_us(row.created_at),
        last_used_at=time_or_none(row.last_used_at),
        revoked_at=time_or_none(row.revoked_at),
        tenant=row.tenant,
        customer_scope=parse_customer_scope(row.customer_scope),
    )


def registration(
    row: Row[Any],
    scopes: list[str],
    secrets: list[SecretCredential],
    certificates: list[CertificateCredential],
) -> Registration:
    """A registration from its row and its children's, each list in ``position`` order."""
    return Registration(
        client_id=row.client_id,
        tenant=row.tenant,
        name=row.name,
        description=row.description,
        scopes=tuple(scopes),
        customer_scope=CustomerScope(
            CustomerScopeKind(row.customer_scope), tuple(json.loads(row.customer_ids))
        ),
        enabled=row.enabled,
        created_at=time_from_us(row.created_at),
        updated_at=time_from_us(row.updated_at),
        registration_expires_at=time_or_none(row.registration_expires_at),
        last_used_at=time_or_none(row.last_used_at),
        secrets=tuple(secrets),
        certificates=tuple(certificates),
        version=row.version,
        generation=row.generation,
    )


def revocation_row(r: Revocation) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "kind": r.kind.value,
        "subject": r.subject,
        "expires_at": us(r.expires_at),
        "generation": r.generation,
        "client_id": r.client_id,
        "issued_at": r.issued_at,
    }


def revocation(row: Row[Any]) -> Revocation:
    return Revocation(
        kind=RevocationKind(row.kind),
        subject=row.subject,
        expires_at=time_from_us(row.expires_at),
        generation=int(row.generation),
        client_id=row.client_id,
        issued_at=int(row.issued_at),
        seq=int(row.seq),
    )


def audit_row(r: AuditRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": us(r.at),
        "actor": r.actor,
        "action": r.action,
        "tenant": r.tenant,
        "client_id": r.client_id,
        "target": r.target,
        "source": r.source,
        "outcome": r.outcome,
        "reason": r.reason,
        "detail": json.dumps(dict(r.detail), ensure_ascii=False, separators=(",", ":")),
    }


def audit_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=time_from_us(row.at),
        actor=row.actor,
        action=row.action,
        tenant=row.tenant,
        client_id=row.client_id,
        target=row.target,
        source=row.source,
        outcome=row.outcome,
        reason=row.reason,
        detail=json.loads(row.detail),
    )


def app_row(a: App) -> dict[str, Any]:
    return {
        "app_id": a.app_id,
        "owner": a.owner,
        "name": a.name,
        "description": a.description,
        "scopes": json.dumps(list(a.scopes)),
        "allowed_tenants": None if a.allowed_tenants is None else json.dumps(list(a.allowed_tenants)),
        "created_at": us(a.created_at),
        "updated_at": us(a.updated_at),
        "version": a.version,
    }


def app(row: Row[Any]) -> App:
    return App(
        app_id=row.app_id,
        owner=row.owner,
        name=row.name,
        description=row.description,
        scopes=tuple(json.loads(row.scopes)),
        allowed_tenants=None if row.allowed_tenants is None else tuple(json.loads(row.allowed_tenants)),
        created_at=time_from_us(row.created_at),
        updated_at=time_from_us(row.updated_at),
        version=row.version,
    )


def connection_row(c: Connection) -> dict[str, Any]:
    return {
        "app_id": c.app_id,
        "tenant": c.tenant,
        "client_id": c.client_id,
        "connected_by": c.connected_by,
        "created_at": us(c.created_at),
    }


def connection(row: Row[Any]) -> Connection:
    return Connection(
        app_id=row.app_id,
        tenant=row.tenant,
        client_id=row.client_id,
        connected_by=row.connected_by,
        created_at=time_from_us(row.created_at),
    )
