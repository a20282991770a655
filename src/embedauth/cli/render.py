"""How the ``embedauth`` command prints a result: a few lines of text, or one JSON document.

The JSON of a model is its public form (:mod:`embedauth.public_json`), the same object the
management API returns; the text is for people (times to the second, "in N days").
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from embedauth import public_json
from embedauth.benchmark import BenchResult
from embedauth.cli.commands import (
    AdminRegistration,
    AppDeleted,
    AppList,
    AuditListing,
    CertificateAdded,
    ConnectionList,
    Deleted,
    GeneratedKek,
    KeyRotated,
    KeyWithdrawn,
    Listed,
    PublishedKeys,
    Removed,
    UserRefreshTokens,
)
from embedauth.clock import isoformat
from embedauth.models import (
    App,
    CreatedRefreshToken,
    CreatedSecret,
    Permission,
    RefreshToken,
    Registration,
    SigningKey,
)
from embedauth.registry.apps import Connected
from embedauth.registry.lifecycle import Notice, SweepResult

__all__ = ["render", "to_json", "to_text"]

_DAY = 86400


def _iso(moment: datetime) -> str:
    return isoformat(moment, "seconds")


def _expires_in(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "expired"
    days = math.ceil(seconds / _DAY)
    return f"in {days} day{'' if days == 1 else 's'}"


def _expiry(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_iso(moment)} ({_expires_in(moment, now)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in pairs) + 2
    return "\n".join(f"{label + ':':<{width}}{value}".rstrip() for label, value in pairs)


def _stops_working(r: Registration, now: datetime) -> str:
    """When the registration can no longer get tokens, and why then."""
    credentials = list(r.credentials())
    if not credentials:
        return "now: it has no secret or certificate left (add one)"
    if r.expires_at is None:
        return "never"
    last = max(c.expires_at for c in credentials)
    cause = "its own expiry" if r.expires_at != last else "its last credential expires"
    return f"{_expiry(r.expires_at, now)}: {cause}"


def _used(moment: datetime | None) -> str:
    return f"last used {_iso(moment)}" if moment else "never used"


def _registration_text(r: Registration, now: datetime) -> str:
    secrets = [
        f"{s.id}  {s.hint}...  expires {_expiry(s.expires_at, now)}"
        + (f"  (replaced {_iso(s.replaced_at)}: works until then)" if s.replaced_at else "")
        + f"  {_used(s.last_used_at)}"
        for s in r.secrets
    ]
    certificates = [
        f"{c.id}  {c.thumbprint}  {c.subject}  {c.key_type}  expires {_expiry(c.expires_at, now)}"
        f"  {_used(c.last_used_at)}"
        for c in r.certificates
    ]
    return _fields(
        [
            ("Name", r.name),
            ("Client ID", r.client_id),
            ("Tenant", r.tenant),
            ("Description", r.description),
            ("Scopes", " ".join(r.scopes) or "(none)"),
            ("Customer scope", str(r.customer_scope)),
            ("Enabled", "yes" if r.enabled else "no: paused, it gets no tokens"),
            ("Created", _iso(r.created_at)),
            ("Last used", _iso(r.last_used_at) if r.last_used_at else "never"),
            ("Stops working", _stops_working(r, now)),
            ("Registration's own expiry", _expiry(r.registration_expires_at, now) + " (renew moves it)"),
            *(("Secret", line) for line in secrets or ["(none)"]),
            *(("Certificate", line) for line in certificates or ["(none)"]),
        ]
    )


def _key_status(key: SigningKey, now: datetime) -> str:
    if now < key.activates_at:
        return "next"
    return "signing" if key.retires_at is None or now < key.retires_at else "retired"


def _token_scopes(t: RefreshToken) -> str:
    return " ".join(t.scopes) or "(none)"


def _token_status(t: RefreshToken, idle_days: int, now: datetime) -> str:
    if t.revoked_at is not None:
        return "revoked"
    return "expired (idle)" if (now - t.idle_since()).total_seconds() > idle_days * _DAY else "active"


def _refresh_token_text(t: RefreshToken) -> str:
    return _fields(
        [
            ("Refresh token ID", t.id),
            ("User", t.user),
            ("Tenant", t.tenant or "(none)"),
            ("Scopes", _token_scopes(t)),
            ("Hint", f"{t.hint}..."),
            ("Created", _iso(t.created_at)),
            ("Last used", _iso(t.last_used_at) if t.last_used_at else "never"),
            ("Revoked", _iso(t.revoked_at) if t.revoked_at else "no"),
        ]
    )


def _notice_text(n: Notice) -> str:
    what = (
        "registration"
        if n.credential is None
        else f"{type(n.credential).__name__[:-10].lower()} {n.credential.id}"
    )
    when = "expired" if n.expired else f"expires in {n.days_left} day{'' if n.days_left == 1 else 's'}"
    failed = "" if n.delivered else "  (a notice hook failed; see the log)"
    return f"{n.registration.tenant}  {n.registration.client_id}  {n.registration.name}: {what} {when} ({_iso(n.expires_at)}){failed}"


def _app_text(a: App) -> str:
    allowed = "any tenant" if a.allowed_tenants is None else " ".join(a.allowed_tenants) or "(none)"
    return _fields(
        [
            ("Name", a.name),
            ("App ID", a.app_id),
            ("Owner", a.owner),
            ("Description", a.description),
            ("Requests", " ".join(a.scopes) or "(nothing)"),
            ("May connect", allowed),
            ("Created", _iso(a.created_at)),
        ]
    )


def to_json(result: object) -> Any:
    """The JSON document of a handler's result (a model's public form, or a small summary)."""
    match result:
        case AuditListing():
            return [public_json.audit_record(r) for r in result.page.items]
        case SweepResult():
            return {
                "at": public_json.time(result.at),
                "notices": [n.to_json(result.at) for n in result.notices],
                "refresh_tokens_revoked": [t.id for t in result.refresh_tokens_revoked],
                "audit_records_pruned": result.audit_records_pruned,
                "registrations_checked": result.registrations_checked,
            }
        case Connected():
            return public_json.Connected.of_connected(result).dump()
        case App():
            return public_json.App.of(result).dump()
        case AppList():
            return [public_json.App.of(a).dump() for a in result.apps]
        case ConnectionList():
            return [public_json.AppConnection.of(c).dump() for c in result.connections]
        case AppDeleted():
            return {"deleted": result.app_id, "connections_deleted": result.client_ids}
        case CreatedRefreshToken():
            return public_json.created_refresh_token(result)
        case RefreshToken():
            return public_json.refresh_token(result)
        case UserRefreshTokens():
            return [public_json.refresh_token(t) for t in result.tokens]
        case KeyRotated():
            return public_json.signing_key(result.key) | {
                "signs_from": public_json.time(result.key.activates_at)
            }
        case PublishedKeys():
            return [public_json.signing_key(k) for k in result.keys]
        case KeyWithdrawn():
            return public_json.signing_key(result.key) | {"withdrawn": True}
        case BenchResult():
            return result.to_json()
        case GeneratedKek():
            return {"key_encryption_key": result.value}
        case CreatedSecret():
            return public_json.created_secret(result)
        case Registration():
            return public_json.registration(result)
        case Listed():
            return [public_json.registration(r) for r in result.page.items]
        case Permission():
            return public_json.permission(result)
        case list():
            return [public_json.permission(p) for p in result]
        case CertificateAdded():
            return public_json.certificate_added(result.registration, result.certificate)
        case AdminRegistration():
            shown = (
                public_json.registration(result.registration)
                if result.created is None
                else public_json.created_secret(result.created)
            )
            return shown | {"sign_in_url": result.sign_in_url}
        case Removed():
            return {"removed": result.name}
        case Deleted():
            return {"deleted": result.deleted, "not_found": result.not_found}
    raise TypeError(f"no JSON form for {type(result).__name__}")


def to_text(result: object, now: datetime) -> str:
    """The text of a handler's result, with times relative to ``now`` where that helps."""
    match result:
        case AuditListing():
            records = result.page
            if not records.items:
                return "No audit records."
            trail = [
                (
                    _iso(r.at),
                    r.actor,
                    r.action,
                    r.client_id or r.target or "-",
                    r.outcome,
                    r.source or "-",
                    r.reason or "",
                )
                for r in records.items
            ]
            listed = _table(
                ("AT", "ACTOR", "ACTION", "CLIENT OR TARGET", "OUTCOME", "SOURCE", "REASON"), trail
            )
            span = f"{records.offset + 1}-{records.offset + len(records.items)}"
            return listed if len(records.items) == records.total else f"{listed}\n({span} of {records.total})"
        case SweepResult():
            lines = [_notice_text(n) for n in result.notices] or ["No notices due."]
            lines.append(
                f"Checked {result.registrations_checked} registration(s); revoked "
                f"{len(result.refresh_tokens_revoked)} idle refresh token(s); pruned "
                f"{result.audit_records_pruned} audit record(s)."
            )
            return "\n".join(lines)
        case Connected():
            return (
                f"Connected app {result.app.app_id} ({result.app.name}) for {result.connection.tenant}.\n"
                + (to_text(result.created, now))
            )
        case App():
            return _app_text(result)
        case AppList():
            if not result.apps:
                return "No apps."
            apps = [
                (
                    a.app_id,
                    a.owner,
                    a.name,
                    " ".join(a.scopes) or "-",
                    "any" if a.allowed_tenants is None else " ".join(a.allowed_tenants) or "-",
                )
                for a in result.apps
            ]
            return _table(("APP ID", "OWNER", "NAME", "REQUESTS", "MAY CONNECT"), apps)
        case ConnectionList():
            if not result.connections:
                return "No connections."
            links = [
                (
                    c.connection.app_id,
                    c.connection.tenant,
                    c.connection.client_id,
                    " ".join(c.registration.scopes) or "-",
                    "enabled" if c.registration.enabled else "paused",
                    c.registration.last_used_at.date().isoformat()
                    if c.registration.last_used_at
                    else "never",
                )
                for c in result.connections
            ]
            return _table(("APP ID", "TENANT", "CLIENT ID", "ALLOWED", "STATUS", "LAST USED"), links)
        case AppDeleted():
            gone = len(result.client_ids)
            return f"Deleted app {result.app_id} and {gone} connection{'' if gone == 1 else 's'}."
        case AdminRegistration():
            if result.created is None:
                return (
                    f"The admin registration {result.registration.client_id} exists already; its secret was "
                    f"shown when it was created.\nFor a new one: embedauth registrations rotate-secret "
                    f"{result.registration.client_id}\nSign in at {result.sign_in_url}"
                )
            return to_text(result.created, now) + (
                f"\nSign in at {result.sign_in_url} with this client ID and secret."
            )
        case CreatedSecret():
            return (
                _registration_text(result.registration, now)
                + "\n"
                + _fields(
                    [
                        ("Client secret", result.client_secret),
                        ("Secret ID", result.credential.id),
                        ("Secret expires", _expiry(result.credential.expires_at, now)),
                    ]
                )
                + "\nThis secret is shown only once; store it now."
            )
        case Registration():
            return _registration_text(result, now)
        case Listed():
            page = result.page
            if not page.items:
                return "No registrations."
            rows = [
                (
                    *((r.tenant,) if result.every_tenant else ()),
                    r.name,
                    r.client_id,
                    r.created_at.date().isoformat(),
                    "yes" if r.enabled else "no",
                    r.last_used_at.date().isoformat() if r.last_used_at else "never",
                    _expires_in(r.expires_at, now),
                )
                for r in page.items
            ]
            header = ("NAME", "CLIENT ID", "CREATED", "ENABLED", "LAST USED", "EXPIRES")
            table = _table(("TENANT", *header) if result.every_tenant else header, rows)
            shown = f"{page.offset + 1}-{page.offset + len(page.items)}"
            return table if len(page.items) == page.total else f"{table}\n({shown} of {page.total})"
        case Permission():
            return f"{result.name}  ({result.access.value})  {result.description}".rstrip()
        case list():
            catalog = [(p.name, p.access.value, p.description) for p in result]
            return _table(("NAME", "ACCESS", "DESCRIPTION"), catalog) if catalog else "No permissions."
        case CertificateAdded():
            c = result.certificate
            return _fields(
                [
                    ("Added certificate", c.id),
                    ("To", result.registration.client_id),
                    ("Thumbprint", c.thumbprint),
                    ("Subject", c.subject),
                    ("Key", c.key_type),
                    ("Expires", _expiry(c.expires_at, now)),
                ]
            )
        case Removed():
            return f"Removed permission {result.name}."
        case Deleted():
            return "\n".join(f"Deleted {client_id}." for client_id in result.deleted)
        case CreatedRefreshToken():
            return (
                _fields(
                    [
                        ("Refresh token ID", result.id),
                        ("User", result.record.user),
                        ("Tenant", result.record.tenant or "(none)"),
                        ("Scopes", _token_scopes(result.record)),
                        ("Refresh token", result.refresh_token),
                    ]
                )
                + "\nThis refresh token is shown only once; store it now."
            )
        case RefreshToken():
            return _refresh_token_text(result)
        case UserRefreshTokens():
            if not result.tokens:
                return f"No refresh tokens for {result.user}."
            tokens = [
                (
                    t.id,
                    f"{t.hint}...",
                    _token_scopes(t),
                    t.created_at.date().isoformat(),
                    t.last_used_at.date().isoformat() if t.last_used_at else "never",
                    _token_status(t, result.idle_days, now),
                )
                for t in result.tokens
            ]
            return _table(("ID", "HINT", "SCOPES", "CREATED", "LAST USED", "STATUS"), tokens)
        case KeyRotated():
            key = result.key
            previous = result.previous_published_until
            handover = (
                "there was no previous key"
                if previous is None
                else f"the previous key stays published until {_iso(previous)}"
            )
            return f"New key {key.kid} published now; it signs from {_iso(key.activates_at)}; {handover}."
        case KeyWithdrawn():
            return f"Withdrew key {result.key.kid}: its tokens are refused from now on."
        case BenchResult():
            return result.markdown()
        case GeneratedKek():
            return result.value
        case PublishedKeys():
            if not result.keys:
                return "No published signing keys."
            rows = [
                (
                    k.kid,
                    k.alg,
                    _key_status(k, now),
                    _iso(k.activates_at),
                    _iso(k.retires_at) if k.retires_at else "-",
                    _iso(k.expires_at) if k.expires_at else "-",
                )
                for k in result.keys
            ]
            return _table(("KID", "ALG", "STATUS", "SIGNS FROM", "RETIRES", "PUBLISHED UNTIL"), rows)
    raise TypeError(f"no text form for {type(result).__name__}")


def render(result: object, as_json: bool, now: datetime) -> str:
    """What the command prints for ``result``: one JSON document, or text for people."""
    return json.dumps(to_json(result), indent=2) if as_json else to_text(result, now)
