"""The ``embedauth`` command: parse the arguments, call one service method, print the result.

    embedauth [--storage URL] GROUP VERB [ARGS] [--json]

Storage is ``--storage URL`` (before GROUP or after VERB), else ``EMBEDAUTH_STORAGE``, else
``sqlite:///embedauth.db``; other settings come from ``EMBEDAUTH_*`` variables. Each verb is one row of
:data:`COMMANDS`; its handler returns a model (or a small result value below) and :func:`_print`
turns that into either the public JSON form of :mod:`embedauth.views` (``--json``: exactly one
document on stdout) or a few lines of text; a signing key's JSON form is
:func:`embedauth.views.signing_key` (public fields only). An :class:`~embedauth.errors.EmbedAuthError` is printed as one
``embedauth: error: ...`` line on stderr with exit status 1; argparse's usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from embedauth import views
from embedauth.clock import Clock, system_clock, utcnow
from embedauth.config import DEFAULT_STORAGE, Settings
from embedauth.core import EmbedAuth
from embedauth.errors import AlreadyExists, ConfigurationError, EmbedAuthError, InvalidInput
from embedauth.models import (
    Access,
    CertificateCredential,
    CreatedRefreshToken,
    CreatedSecret,
    Page,
    Permission,
    RefreshToken,
    Registration,
    SigningKey,
)

__all__ = ["COMMANDS", "build_parser", "main"]

PROG = "embedauth"
_DAY = 86400

Handler = Callable[[EmbedAuth, argparse.Namespace], object]
Adder = Callable[[argparse._ActionsContainer], object]


# ---------------------------------------------------------------------- results without a model


@dataclass(frozen=True, slots=True)
class Removed:
    """``permissions remove``: the name of the permission removed."""

    name: str


@dataclass(frozen=True, slots=True)
class Deleted:
    """``registrations delete``: which client IDs were deleted and which did not exist."""

    deleted: list[str]
    not_found: list[str]


@dataclass(frozen=True, slots=True)
class CertificateAdded:
    """``registrations add-certificate``: the registration as it now is, and the new certificate."""

    registration: Registration
    certificate: CertificateCredential


@dataclass(frozen=True, slots=True)
class UserRefreshTokens:
    """``refresh-tokens list``: a user's refresh tokens, revoked ones included, without their values."""

    user: str
    tokens: list[RefreshToken]
    idle_days: int  # unused this long, a token is refused (and revoked) at its next use


@dataclass(frozen=True, slots=True)
class KeyRotated:
    """``keys rotate``: the new key, and until when the key it replaces stays published (if any)."""

    key: SigningKey
    previous_published_until: datetime | None


@dataclass(frozen=True, slots=True)
class PublishedKeys:
    """``keys list``: the keys in the JWKS now, oldest first to sign."""

    keys: list[SigningKey]


# ---------------------------------------------------------------------- argument types and helpers


def _moment(text: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or date and time; ``Z`` or no offset means UTC."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or date and time: {text!r} (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _scopes(values: list[str] | None) -> list[str] | None:
    """Repeated ``--scope`` options, each of which may hold several space-separated scopes."""
    return None if values is None else [scope for value in values for scope in value.split()]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None


def arg(*flags: str, **options: Any) -> Adder:
    """One ``add_argument`` call, kept for later."""
    return lambda parser: parser.add_argument(*flags, **options)


def one_of(*adders: Adder, required: bool = False) -> Adder:
    """Arguments of which at most one (exactly one if ``required``) may be given."""

    def add(parser: argparse._ActionsContainer) -> None:
        group = parser.add_mutually_exclusive_group(required=required)
        for adder in adders:
            adder(group)

    return add


_CLIENT_ID = arg("client_id", metavar="CLIENT_ID")
_SCOPE = arg(
    "--scope",
    action="append",
    metavar="SCOPE",
    help="a permission to grant (repeat it, or give several separated by spaces)",
)
_CUSTOMER_SCOPE = arg(
    "--customer-scope", metavar="SCOPE", help="'all', 'customers:ID,...' or 'groups:ID,...'"
)
_TOKEN_SCOPE = arg(
    "--scope",
    action="append",
    metavar="SCOPE",
    help="limit the token to this permission (repeat it, or give several separated by spaces); "
    "without --scope, every permission in the catalog",
)
_ALGORITHMS = ("RS256", "ES256", "EdDSA")
_SECRET_LIFETIME = one_of(
    arg("--secret-days", type=int, metavar="DAYS", help="the secret's lifetime: 365 (default), 730 or 1095"),
    arg("--secret-expires", type=_moment, metavar="DATE", help="a custom expiry of the secret (ISO 8601)"),
)


# ---------------------------------------------------------------------- handlers


def _add_permission(auth: EmbedAuth, a: argparse.Namespace) -> Permission:
    try:
        return auth.permissions.add(a.name, description=a.description, access=a.access)
    except AlreadyExists:
        if not a.if_missing:
            raise
        return auth.permissions.get(a.name)


def _remove_permission(auth: EmbedAuth, a: argparse.Namespace) -> Removed:
    auth.permissions.remove(a.name)
    return Removed(a.name)


def _create(auth: EmbedAuth, a: argparse.Namespace) -> CreatedSecret:
    return auth.registrations.create(
        tenant=a.tenant,
        name=a.name,
        description=a.description,
        scopes=_scopes(a.scope),
        customer_scope=a.customer_scope,
        secret_days=a.secret_days,
        secret_expires_at=a.secret_expires,
        expires_at=a.expires,
        enabled=not a.disabled,
    )


def _update(auth: EmbedAuth, a: argparse.Namespace) -> Registration:
    fields = {"name": a.name, "description": a.description, "customer_scope": a.customer_scope}
    changes: dict[str, Any] = {key: value for key, value in fields.items() if value is not None}
    if a.no_scopes or a.scope is not None:
        changes["scopes"] = [] if a.no_scopes else _scopes(a.scope)
    if not changes:
        raise InvalidInput(
            "nothing to change: give --name, --description, --scope, --no-scopes or --customer-scope"
        )
    return auth.registrations.update(a.client_id, **changes)


def _add_certificate(auth: EmbedAuth, a: argparse.Namespace) -> CertificateAdded:
    certificate = auth.registrations.add_certificate(a.client_id, _read(a.certificate))
    return CertificateAdded(auth.registrations.get(a.client_id), certificate)


def _delete(auth: EmbedAuth, a: argparse.Namespace) -> Deleted:
    deleted = auth.registrations.delete_many(a.client_ids)
    return Deleted(deleted, [cid for cid in dict.fromkeys(a.client_ids) if cid not in deleted])


def _list_refresh_tokens(auth: EmbedAuth, a: argparse.Namespace) -> UserRefreshTokens:
    tokens = auth.refresh_tokens.list(a.user)
    return UserRefreshTokens(a.user, tokens, auth.settings.refresh_token_idle_days)


def _rotate_key(auth: EmbedAuth, a: argparse.Namespace) -> KeyRotated:
    algorithm = a.algorithm or auth.settings.signing_algorithm
    if algorithm not in auth.settings.algorithms:  # checked here: rotate() retires the old key first
        configured = ", ".join(auth.settings.algorithms)
        raise ConfigurationError(f"algorithm {algorithm} is not in the configured algorithms ({configured})")
    key = auth.keys.rotate(algorithm=algorithm)
    handed_over = [
        k.record.expires_at
        for k in auth.keys.published()
        if k.kid != key.kid and k.record.retires_at == key.activates_at and k.record.expires_at is not None
    ]
    return KeyRotated(key, max(handed_over, default=None))


def _published_keys(auth: EmbedAuth, a: argparse.Namespace) -> PublishedKeys:
    records = sorted((k.record for k in auth.keys.published()), key=lambda r: (r.activates_at, r.kid))
    return PublishedKeys(records)


@dataclass(frozen=True, slots=True)
class Command:
    handler: Handler
    help: str
    arguments: tuple[Adder, ...] = ()


COMMANDS: dict[str, dict[str, Command]] = {
    "permissions": {
        "add": Command(
            _add_permission,
            "add a permission to the catalog",
            (
                arg("name", metavar="NAME", help="an OAuth scope, such as devices:read"),
                arg("--description", metavar="TEXT"),
                arg("--access", choices=[a.value for a in Access], default=Access.READ.value),
                arg("--if-missing", action="store_true", help="if NAME exists, print it and succeed"),
            ),
        ),
        "list": Command(
            lambda auth, a: auth.permissions.list(a.contains),
            "list the catalog",
            (arg("--contains", metavar="TEXT", help="only names or descriptions containing TEXT"),),
        ),
        "remove": Command(
            _remove_permission, "remove a permission no registration holds", (arg("name", metavar="NAME"),)
        ),
    },
    "registrations": {
        "create": Command(
            _create,
            "create a registration and print its first secret (shown only once)",
            (
                arg("--tenant", required=True),
                arg("--name", required=True),
                arg("--description", metavar="TEXT"),
                _SCOPE,
                _CUSTOMER_SCOPE,
                _SECRET_LIFETIME,
                arg("--expires", type=_moment, metavar="DATE", help="when the registration itself expires"),
                arg("--disabled", action="store_true", help="create it paused"),
            ),
        ),
        "list": Command(
            lambda auth, a: auth.registrations.list(
                a.tenant, name_contains=a.name_contains, offset=a.offset, limit=a.limit
            ),
            "list a tenant's registrations",
            (
                arg("--tenant", required=True),
                arg("--name-contains", metavar="TEXT"),
                arg("--offset", type=int, default=0),
                arg("--limit", type=int, default=50),
            ),
        ),
        "show": Command(
            lambda auth, a: auth.registrations.get(a.client_id), "show a registration", (_CLIENT_ID,)
        ),
        "update": Command(
            _update,
            "change a registration's name, description, permissions or customer scope",
            (
                _CLIENT_ID,
                arg("--name"),
                arg("--description", metavar="TEXT"),
                one_of(_SCOPE, arg("--no-scopes", action="store_true", help="remove every permission")),
                _CUSTOMER_SCOPE,
            ),
        ),
        "rotate-secret": Command(
            lambda auth, a: auth.registrations.rotate_secret(
                a.client_id, secret_days=a.secret_days, secret_expires_at=a.secret_expires
            ),
            "replace every secret with a new one (the old ones stop working at once)",
            (_CLIENT_ID, _SECRET_LIFETIME),
        ),
        "add-secret": Command(
            lambda auth, a: auth.registrations.add_secret(
                a.client_id, secret_days=a.secret_days, secret_expires_at=a.secret_expires
            ),
            "add a second secret beside the current one",
            (_CLIENT_ID, _SECRET_LIFETIME),
        ),
        "delete-secret": Command(
            lambda auth, a: auth.registrations.delete_secret(a.client_id, a.secret_id),
            "delete one secret",
            (_CLIENT_ID, arg("secret_id", metavar="SECRET_ID")),
        ),
        "add-certificate": Command(
            _add_certificate,
            "add a certificate whose private key signs client assertions",
            (_CLIENT_ID, arg("--certificate", required=True, metavar="FILE", help="a .pem or .cer file")),
        ),
        "remove-certificate": Command(
            lambda auth, a: auth.registrations.remove_certificate(a.client_id, a.certificate_id),
            "remove a certificate",
            (
                _CLIENT_ID,
                arg(
                    "certificate_id",
                    metavar="CERT_ID_OR_THUMBPRINT",
                    help="put -- before a thumbprint that starts with -",
                ),
            ),
        ),
        "disable": Command(
            lambda auth, a: auth.registrations.disable(a.client_id),
            "pause: its tokens stop working",
            (_CLIENT_ID,),
        ),
        "enable": Command(
            lambda auth, a: auth.registrations.enable(a.client_id),
            "restore a paused registration",
            (_CLIENT_ID,),
        ),
        "renew": Command(
            lambda auth, a: auth.registrations.renew(a.client_id, days=a.days, expires_at=a.expires),
            "move the registration's own expiry later",
            (
                _CLIENT_ID,
                one_of(
                    arg("--days", type=int, help="expire this many days from now"),
                    arg("--expires", type=_moment, metavar="DATE"),
                    required=True,
                ),
            ),
        ),
        "delete": Command(
            _delete,
            "delete registrations (their tokens stop working)",
            (arg("client_ids", nargs="+", metavar="CLIENT_ID"),),
        ),
    },
    "refresh-tokens": {
        "create": Command(
            lambda auth, a: auth.refresh_tokens.create(a.user, scopes=_scopes(a.scope), tenant=a.tenant),
            "create a person's API refresh token and print it (shown only once)",
            (
                arg("--user", required=True, help="the person's user id"),
                _TOKEN_SCOPE,
                arg("--tenant", help="the tenant its access tokens name"),
            ),
        ),
        "list": Command(
            _list_refresh_tokens,
            "list a person's refresh tokens (never their values)",
            (arg("--user", required=True, help="the person's user id"),),
        ),
        "revoke": Command(
            lambda auth, a: auth.refresh_tokens.revoke(a.token_id),
            "revoke a refresh token and every access token it produced",
            (arg("token_id", metavar="ID"),),
        ),
    },
    "keys": {
        "rotate": Command(
            _rotate_key,
            "publish a new signing key now; it signs once every JWKS cache has seen it",
            (
                arg(
                    "--algorithm",
                    choices=_ALGORITHMS,
                    help="the new key's algorithm (default: the configured signing_algorithm)",
                ),
            ),
        ),
        "list": Command(_published_keys, "list the published signing keys (public fields only)"),
    },
}

_GROUP_HELP = {
    "permissions": "the permission catalog",
    "registrations": "app registrations",
    "refresh-tokens": "people's API refresh tokens",
    "keys": "the token-signing keys",
}


class _Parser(argparse.ArgumentParser):
    """Every error line starts ``embedauth: error:``, naming the command it is about."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix(PROG).strip()
        self.exit(2, f"{PROG}: error: {command + ': ' if command else ''}{message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--storage",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"storage URL (default: $EMBEDAUTH_STORAGE, else {DEFAULT_STORAGE})",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Manage embedauth's permissions, app registrations, refresh tokens and signing keys.",
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    for group_name, verbs in COMMANDS.items():
        help_text = _GROUP_HELP[group_name]
        group = groups.add_parser(group_name, parents=[common], help=help_text, description=help_text)
        verb_parsers = group.add_subparsers(dest="verb", metavar="VERB", required=True)
        for verb_name, command in verbs.items():
            verb = verb_parsers.add_parser(
                verb_name, parents=[common], help=command.help, description=command.help
            )
            for add in command.arguments:
                add(verb)
            verb.set_defaults(handler=command.handler)
    serve = groups.add_parser("serve", parents=[common], help=SERVE_HELP, description=SERVE_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--issuer", metavar="URL", help="the issuer URL (default: $EMBEDAUTH_ISSUER, else http://HOST:PORT)"
    )
    serve.add_argument("--framework", choices=["starlette", "flask"], default="starlette")
    serve.set_defaults(handler=_serve)
    return parser


SERVE_HELP = (
    "serve the OAuth endpoints and the demo API (/demo/public, /demo/whoami, /demo/devices) with uvicorn"
)


def _serve(auth: EmbedAuth, a: argparse.Namespace) -> None:
    import uvicorn

    from embedauth.service import asgi_app

    auth.keys.signing_key()  # the first key exists before the first request
    auth.revocations.start()  # changes made with this command elsewhere arrive within a second
    print(
        f"{PROG}: serving {auth.settings.issuer} ({a.framework}) on http://{a.host}:{a.port}", file=sys.stderr
    )
    uvicorn.run(asgi_app(auth, a.framework), host=a.host, port=a.port, log_level="warning")


# ---------------------------------------------------------------------- printing


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def _registration_text(r: Registration, now: datetime) -> str:
    secrets = [f"{s.id}  {s.hint}...  expires {_expiry(s.expires_at, now)}" for s in r.secrets]
    certificates = [
        f"{c.id}  {c.thumbprint}  {c.subject}  {c.key_type}  expires {_expiry(c.expires_at, now)}"
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
            ("Enabled", "yes" if r.enabled else "no"),
            ("Created", _iso(r.created_at)),
            ("Last used", _iso(r.last_used_at) if r.last_used_at else "never"),
            ("Registration expires", _expiry(r.registration_expires_at, now)),
            ("Expires", _expiry(r.expires_at, now)),
            *(("Secret", line) for line in secrets or ["(none)"]),
            *(("Certificate", line) for line in certificates or ["(none)"]),
        ]
    )


def _key_status(key: SigningKey, now: datetime) -> str:
    if now < key.activates_at:
        return "next"
    return "signing" if key.retires_at is None or now < key.retires_at else "retired"


def _token_scopes(t: RefreshToken) -> str:
    return " ".join(t.scopes) or "(every permission)"


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


def _to_json(result: object) -> Any:
    match result:
        case CreatedRefreshToken():
            return views.created_refresh_token(result)
        case RefreshToken():
            return views.refresh_token(result)
        case UserRefreshTokens():
            return [views.refresh_token(t) for t in result.tokens]
        case KeyRotated():
            return views.signing_key(result.key) | {"signs_from": views.time(result.key.activates_at)}
        case PublishedKeys():
            return [views.signing_key(k) for k in result.keys]
        case CreatedSecret():
            return views.created_secret(result)
        case Registration():
            return views.registration(result)
        case Page():
            return [views.registration(r) for r in result.items]
        case Permission():
            return views.permission(result)
        case list():
            return [views.permission(p) for p in result]
        case CertificateAdded():
            return views.registration(result.registration) | {
                "certificate": views.certificate(result.certificate)
            }
        case Removed():
            return {"removed": result.name}
        case Deleted():
            return {"deleted": result.deleted, "not_found": result.not_found}
    raise TypeError(f"no JSON form for {type(result).__name__}")


def _to_text(result: object, now: datetime) -> str:
    match result:
        case CreatedSecret():
            r = result.registration
            return (
                _fields(
                    [
                        ("Registration", f"{r.name} (tenant {r.tenant})"),
                        ("Client ID", result.client_id),
                        ("Client secret", result.client_secret),
                        ("Secret ID", result.credential.id),
                        ("Secret expires", _expiry(result.credential.expires_at, now)),
                    ]
                )
                + "\nThis secret is shown only once; store it now."
            )
        case Registration():
            return _registration_text(result, now)
        case Page():
            if not result.items:
                return "No registrations."
            rows = [
                (
                    r.name,
                    r.client_id,
                    r.created_at.date().isoformat(),
                    "yes" if r.enabled else "no",
                    r.last_used_at.date().isoformat() if r.last_used_at else "never",
                    _expires_in(r.expires_at, now),
                )
                for r in result.items
            ]
            table = _table(("NAME", "CLIENT ID", "CREATED", "ENABLED", "LAST USED", "EXPIRES"), rows)
            shown = f"{result.offset + 1}-{result.offset + len(result.items)}"
            return table if len(result.items) == result.total else f"{table}\n({shown} of {result.total})"
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


def _print(result: object, as_json: bool, now: datetime) -> None:
    text = json.dumps(_to_json(result), indent=2) if as_json else _to_text(result, now)
    if text and result is not None:
        print(text)


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------- entry point


def _issuer(args: argparse.Namespace) -> str | None:
    """``serve``'s issuer: ``--issuer``, else ``$EMBEDAUTH_ISSUER``, else where it listens."""
    if args.group != "serve":
        return None
    if args.issuer is None and "EMBEDAUTH_ISSUER" not in os.environ:
        return f"http://{args.host}:{args.port}"
    return str(args.issuer) if args.issuer is not None else None


def main(argv: Sequence[str] | None = None, *, clock: Clock = system_clock) -> int:
    """Run the command; return its exit status (0, 1 for an error, 2 for a usage error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on a usage error (2) and after --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = Settings.from_env(storage=getattr(args, "storage", None), issuer=_issuer(args))
        with EmbedAuth(settings=settings, clock=clock, load_entrypoints=True) as auth:
            result = args.handler(auth, args)
            now = utcnow(auth.clock)
    except EmbedAuthError as exc:
        return _error(str(exc))
    _print(result, getattr(args, "json", False), now)
    if isinstance(result, Deleted) and result.not_found:
        return _error(f"no registration with client ID {', '.join(map(repr, result.not_found))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
