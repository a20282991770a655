"""The verbs of the ``embedauth`` command: one row of :data:`COMMANDS` each, each one service call.

A handler returns a model, or one of the small result values below when a verb has no model to
return; :mod:`embedauth.cli.render` prints either as text or as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from embedauth import benchmark
from embedauth.clock import utcnow
from embedauth.core import EmbedAuth
from embedauth.errors import AlreadyExists, ConfigurationError, InvalidInput
from embedauth.http.management import ADMIN_SCOPE, CATALOG_SCOPE
from embedauth.models import (
    Access,
    App,
    AuditRecord,
    CertificateCredential,
    CreatedRefreshToken,
    CreatedSecret,
    Page,
    Permission,
    RefreshToken,
    Registration,
    SigningKey,
)
from embedauth.registry.apps import AppConnection, Connected, TenantApps
from embedauth.registry.registrations import MAX_PAGE, SORTS, TenantRegistrations
from embedauth.tokens.keys import new_key_encryption_key

__all__ = [
    "COMMANDS",
    "GROUP_HELP",
    "PROG",
    "SERVE_HELP",
    "TOP_LEVEL",
    "AdminRegistration",
    "AppDeleted",
    "AppList",
    "AuditListing",
    "CertificateAdded",
    "Command",
    "ConnectionList",
    "Deleted",
    "GeneratedKek",
    "KeyRotated",
    "KeyWithdrawn",
    "Listed",
    "PublishedKeys",
    "Removed",
    "UserRefreshTokens",
    "serve",
]

PROG = "embedauth"

Handler = Callable[[EmbedAuth, argparse.Namespace], object]
Adder = Callable[[argparse._ActionsContainer], object]


# ---------------------------------------------------------------------- results without a model


@dataclass(frozen=True, slots=True)
class Removed:
    """``permissions remove``: the name of the permission removed."""

    name: str


@dataclass(frozen=True, slots=True)
class AppList:
    """``apps list``: the apps, oldest first."""

    apps: list[App]


@dataclass(frozen=True, slots=True)
class ConnectionList:
    """``apps connections``: connections with their registrations as they are now."""

    connections: list[AppConnection]


@dataclass(frozen=True, slots=True)
class AppDeleted:
    """``apps delete``: the app and the client IDs of the connections deleted with it."""

    app_id: str
    client_ids: list[str]


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
class Listed:
    """``registrations list``: one page, and whether it spans every tenant (then each row says whose)."""

    page: Page[Registration]
    every_tenant: bool


@dataclass(frozen=True, slots=True)
class KeyWithdrawn:
    """``keys withdraw``: the key withdrawn."""

    key: SigningKey


@dataclass(frozen=True, slots=True)
class GeneratedKek:
    """``keys generate-kek``: a new key-encryption key (printed, never stored)."""

    value: str


@dataclass(frozen=True, slots=True)
class AdminRegistration:
    """``admins create``: the admin registration, its secret when it was just created (None when it
    existed already, with ``--if-missing``), and where to sign in with it."""

    registration: Registration
    created: CreatedSecret | None
    sign_in_url: str


@dataclass(frozen=True, slots=True)
class AuditListing:
    """``audit``: one page of the audit trail, newest first."""

    page: Page[AuditRecord]


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


_ONLY_TENANT = arg(
    "--tenant",
    help="act only if it belongs to this tenant (another tenant's is not found, as in the admin API)",
)


def _client_id(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("client_id", metavar="CLIENT_ID", help="the registration's client ID")
    _ONLY_TENANT(parser)


_CLIENT_ID: Adder = _client_id
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
    "without --scope, the catalog's read permissions (never a write one)",
)
_ALGORITHMS = ("RS256", "ES256", "EdDSA")
_SECRET_LIFETIME = one_of(
    arg("--secret-days", type=int, metavar="DAYS", help="the secret's lifetime: 365 (default), 730 or 1095"),
    arg("--secret-expires", type=_moment, metavar="DATE", help="a custom expiry of the secret (ISO 8601)"),
)

# ---------------------------------------------------------------------- handlers


def _actor() -> str:
    """Who runs the command, for the audit trail (``cli:`` and the login name)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in this environment
        return "cli"


def _registrations(auth: EmbedAuth, a: argparse.Namespace) -> TenantRegistrations:
    """The registrations this command may touch: ``--tenant``'s, or every tenant's; each change
    reported to the ``embedauth_admin_action`` hook and the audit trail as the command's."""
    only = getattr(a, "tenant", None) if a.verb != "create" else None
    return auth.registrations.for_tenants(None if only is None else [only], actor=_actor(), source="cli")


def _audited(auth: EmbedAuth, action: str, target: str, tenant: str | None = None, **detail: Any) -> None:
    """A change the command made outside a registration, to the hook and the audit trail."""
    auth.audit.admin_action(
        actor=_actor(), action=action, tenant=tenant, target=target, detail=detail, source="cli"
    )


def _add_permission(auth: EmbedAuth, a: argparse.Namespace) -> Permission:
    try:
        added = auth.permissions.add(a.name, description=a.description, access=a.access)
    except AlreadyExists:
        if not a.if_missing:
            raise
        return auth.permissions.get(a.name)
    _audited(auth, "permission.add", added.name, access=added.access.value)
    return added


def _remove_permission(auth: EmbedAuth, a: argparse.Namespace) -> Removed:
    auth.permissions.remove(a.name)
    _audited(auth, "permission.remove", a.name)
    return Removed(a.name)


def _duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``24h`` or ``7d``: a duration (seconds when there is no unit)."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    unit = units.get(value[-1:])
    number = value[:-1] if unit is not None else value
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 3600, 90m, 24h or 7d)")
    return timedelta(seconds=int(number) * (unit or 1))


def _rotate_secret(auth: EmbedAuth, a: argparse.Namespace) -> CreatedSecret:
    return _registrations(auth, a).rotate_secret(
        a.client_id, secret_days=a.secret_days, secret_expires_at=a.secret_expires, grace=a.grace
    )


def _create_refresh_token(auth: EmbedAuth, a: argparse.Namespace) -> CreatedRefreshToken:
    created = auth.refresh_tokens.create(
        a.user, scopes=_scopes(a.scope), tenant=a.tenant, customer_scope=a.customer_scope
    )
    _audited(auth, "refresh_token.create", created.id, created.record.tenant, user=created.record.user)
    return created


def _revoke_refresh_token(auth: EmbedAuth, a: argparse.Namespace) -> RefreshToken:
    revoked = auth.refresh_tokens.revoke(a.token_id)
    _audited(auth, "refresh_token.revoke", revoked.id, revoked.tenant, user=revoked.user)
    return revoked


def _audit(auth: EmbedAuth, a: argparse.Namespace) -> AuditListing:
    return AuditListing(
        auth.audit.list(a.tenant, client_id=a.client_id, since=a.since, offset=a.offset, limit=a.limit)
    )


def _create(auth: EmbedAuth, a: argparse.Namespace) -> CreatedSecret:
    return _registrations(auth, a).create(
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
    return _registrations(auth, a).update(a.client_id, **changes)


def _add_certificate(auth: EmbedAuth, a: argparse.Namespace) -> CertificateAdded:
    registrations = _registrations(auth, a)
    certificate = registrations.add_certificate(a.client_id, _read(a.certificate))
    return CertificateAdded(registrations.get(a.client_id), certificate)


def _delete(auth: EmbedAuth, a: argparse.Namespace) -> Deleted:
    deleted = _registrations(auth, a).delete_many(a.client_ids)
    return Deleted(deleted, [cid for cid in dict.fromkeys(a.client_ids) if cid not in deleted])


def _list_registrations(auth: EmbedAuth, a: argparse.Namespace) -> Listed:
    if a.expiring_within is not None and a.expiring_within < 0:
        raise InvalidInput("--expiring-within takes a number of days, 0 or more")
    expires_before = (
        None if a.expiring_within is None else utcnow(auth.clock) + timedelta(days=a.expiring_within)
    )

    def page_at(offset: int, limit: int) -> Page[Registration]:
        return auth.registrations.list(
            a.tenant,
            name_contains=a.name_contains,
            expires_before=expires_before,
            sort=a.sort,
            descending=a.desc,
            offset=offset,
            limit=limit,
        )

    if not a.all:
        return Listed(page_at(a.offset, a.limit), every_tenant=a.tenant is None)
    items: list[Registration] = []
    while True:
        page = page_at(len(items), MAX_PAGE)
        items.extend(page.items)
        if not page.items or len(items) >= page.total:
            return Listed(Page(items, len(items), 0, max(len(items), 1)), every_tenant=a.tenant is None)


def _list_refresh_tokens(auth: EmbedAuth, a: argparse.Namespace) -> UserRefreshTokens:
    tokens = auth.refresh_tokens.list(a.user)
    return UserRefreshTokens(a.user, tokens, auth.settings.refresh_token_idle_days)


_ADMIN_PERMISSIONS = {
    ADMIN_SCOPE: "Administer the tenant's app registrations (the admin page and API)",
    CATALOG_SCOPE: "Change the permission catalog every tenant shares",
}


def _apps(auth: EmbedAuth) -> TenantApps:
    return auth.apps.for_tenants(None, actor=_actor())


def _allowed(a: argparse.Namespace) -> dict[str, Any]:
    if a.any_tenant:
        return {"allowed_tenants": None}
    return {} if a.allow_tenant is None else {"allowed_tenants": a.allow_tenant}


def _create_app(auth: EmbedAuth, a: argparse.Namespace) -> App:
    return _apps(auth).create(
        owner=a.owner,
        name=a.name,
        description=a.description,
        scopes=_scopes(a.scope),
        allowed_tenants=a.allow_tenant,
    )


def _update_app(auth: EmbedAuth, a: argparse.Namespace) -> App:
    changes: dict[str, Any] = _allowed(a)
    for field in ("name", "description"):
        if getattr(a, field) is not None:
            changes[field] = getattr(a, field)
    if a.scope is not None:
        changes["scopes"] = _scopes(a.scope)
    if not changes:
        raise InvalidInput("nothing to change: give --name, --description, --scope or the tenants")
    return _apps(auth).update(a.app_id, **changes)


def _connect_app(auth: EmbedAuth, a: argparse.Namespace) -> Connected:
    return _apps(auth).connect(
        a.app_id,
        tenant=a.tenant,
        scopes=_scopes(a.scope),
        secret_days=a.secret_days,
        secret_expires_at=a.secret_expires,
    )


def _app_connections(auth: EmbedAuth, a: argparse.Namespace) -> ConnectionList:
    tenants = None if a.tenant is None else [a.tenant]
    if a.app_id is not None:
        auth.apps.get(a.app_id)  # an unknown app is an error, not an empty list
    return ConnectionList(auth.apps.connections(a.app_id, tenants))


def _create_admin(auth: EmbedAuth, a: argparse.Namespace) -> AdminRegistration:
    for name, description in _ADMIN_PERMISSIONS.items():
        with contextlib.suppress(AlreadyExists):
            auth.permissions.add(name, description=description, access=Access.WRITE)
    settings = auth.settings
    sign_in_url = settings.issuer.rstrip("/") + (settings.admin_page_path or settings.admin_api_prefix) + "/"
    if a.if_missing:
        existing = auth.registrations.list(
            a.tenant, holding=ADMIN_SCOPE, name_contains=a.name, limit=MAX_PAGE
        )
        for registration in existing.items:
            if registration.name == a.name:
                return AdminRegistration(registration, None, sign_in_url)
    scopes = [ADMIN_SCOPE] if a.no_catalog else [ADMIN_SCOPE, CATALOG_SCOPE]
    created = _registrations(auth, a).create(tenant=a.tenant, name=a.name, scopes=scopes)
    return AdminRegistration(created.registration, created, sign_in_url)


def _rotate_key(auth: EmbedAuth, a: argparse.Namespace) -> KeyRotated:
    algorithm = a.algorithm or auth.settings.signing_algorithm
    if algorithm not in auth.settings.algorithms:  # checked here: rotate() retires the old key first
        configured = ", ".join(auth.settings.algorithms)
        raise ConfigurationError(f"algorithm {algorithm} is not in the configured algorithms ({configured})")
    key = auth.keys.rotate(algorithm=algorithm)
    _audited(auth, "signing_key.rotate", key.kid, alg=key.alg)
    handed_over = [
        k.record.expires_at
        for k in auth.keys.published()
        if k.kid != key.kid and k.record.retires_at == key.activates_at and k.record.expires_at is not None
    ]
    return KeyRotated(key, max(handed_over, default=None))


def _withdraw_key(auth: EmbedAuth, a: argparse.Namespace) -> KeyWithdrawn:
    withdrawn = auth.keys.withdraw(a.kid)
    _audited(auth, "signing_key.withdraw", withdrawn.kid)
    return KeyWithdrawn(withdrawn)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return int(text)


def _bench(auth: EmbedAuth, a: argparse.Namespace) -> benchmark.BenchResult:
    preset = benchmark.QUICK if a.quick else benchmark.DEFAULT
    if a.rounds is not None:
        preset = benchmark.Preset(a.rounds, preset.verify_batch, preset.issue_batch)
    with benchmark.progress_bar() as progress:  # on stderr, when stderr is a terminal
        return benchmark.run(preset, progress=progress)


def _published_keys(auth: EmbedAuth, a: argparse.Namespace) -> PublishedKeys:
    records = sorted((k.record for k in auth.keys.published()), key=lambda r: (r.activates_at, r.kid))
    return PublishedKeys(records)


@dataclass(frozen=True, slots=True)
class Command:
    handler: Handler
    help: str
    arguments: tuple[Adder, ...] = ()
    storage: bool = True
    """False: the verb needs no storage, and its handler gets a memory:// instance, whatever
    ``--storage`` says (``bench`` builds the instances it measures itself)."""


COMMANDS: dict[str, dict[str, Command]] = {
    "admins": {
        "create": Command(
            _create_admin,
            "create a tenant's admin registration (embedauth:admin, embedauth:catalog) and print its secret",
            (
                arg("--tenant", required=True, help="the tenant it administers"),
                arg("--name", default="Admin console", help="its name (default: Admin console)"),
                arg(
                    "--no-catalog", action="store_true", help="without embedauth:catalog (no catalog changes)"
                ),
                arg(
                    "--if-missing",
                    action="store_true",
                    help="if the tenant has an admin registration of that name, print it (not its secret)",
                ),
            ),
        ),
    },
    "apps": {
        "create": Command(
            _create_app,
            "define a multi-tenant app: the permissions it requests, the tenants that may connect it",
            (
                arg("--owner", required=True, help="the developer's tenant, which owns the app"),
                arg("--name", required=True, help="the name connecting admins will see"),
                arg("--description", metavar="TEXT", help="what it does (optional)"),
                arg(
                    "--scope",
                    action="append",
                    metavar="SCOPE",
                    help="a permission it requests (repeat it, or give several separated by spaces)",
                ),
                arg(
                    "--allow-tenant",
                    action="append",
                    metavar="TENANT",
                    help="a tenant that may connect it (repeat it; default: any tenant)",
                ),
            ),
        ),
        "list": Command(
            lambda auth, a: AppList(_apps(auth).list() if a.owner is None else auth.apps.list([a.owner])),
            "list the apps",
            (arg("--owner", help="only this tenant's apps (default: every app)"),),
        ),
        "show": Command(
            lambda auth, a: auth.apps.get(a.app_id),
            "show an app",
            (arg("app_id", metavar="APP_ID", help="the app's id"),),
        ),
        "update": Command(
            _update_app,
            "change an app (narrowed permissions narrow every connection; a tenant no longer allowed is paused)",
            (
                arg("app_id", metavar="APP_ID", help="the app's id"),
                arg("--name", help="a new name"),
                arg("--description", metavar="TEXT", help="a new description"),
                arg(
                    "--scope",
                    action="append",
                    metavar="SCOPE",
                    help="the permissions it requests from now on (repeat it)",
                ),
                one_of(
                    arg(
                        "--allow-tenant",
                        action="append",
                        metavar="TENANT",
                        help="the tenants that may connect it from now on (repeat it)",
                    ),
                    arg("--any-tenant", action="store_true", help="any tenant may connect it"),
                ),
            ),
        ),
        "delete": Command(
            lambda auth, a: AppDeleted(a.app_id, _apps(auth).delete(a.app_id)),
            "delete an app and every connection's registration (their tokens stop working)",
            (arg("app_id", metavar="APP_ID", help="the app's id"),),
        ),
        "connect": Command(
            _connect_app,
            "connect an app for a tenant: a registration of that tenant, and its secret (shown only once)",
            (
                arg("app_id", metavar="APP_ID", help="the app's id"),
                arg("--tenant", required=True, help="the tenant connecting it"),
                arg(
                    "--scope",
                    action="append",
                    metavar="SCOPE",
                    help="a permission to allow (repeat it; default: every one the app requests)",
                ),
                _SECRET_LIFETIME,
            ),
        ),
        "connections": Command(
            _app_connections,
            "list connections: which tenants connected, with which permissions (never a secret)",
            (
                arg("app_id", nargs="?", metavar="APP_ID", help="only this app's (default: every app's)"),
                arg("--tenant", help="only this tenant's"),
            ),
        ),
    },
    "permissions": {
        "add": Command(
            _add_permission,
            "add a permission to the catalog",
            (
                arg("name", metavar="NAME", help="an OAuth scope, such as devices:read"),
                arg(
                    "--description",
                    metavar="TEXT",
                    help="what it allows, as admins will read it when they pick it",
                ),
                arg(
                    "--access",
                    choices=[a.value for a in Access],
                    default=Access.READ.value,
                    help="whether it reads or changes data (default: read)",
                ),
                arg("--if-missing", action="store_true", help="if NAME exists, print it and succeed"),
            ),
        ),
        "list": Command(
            lambda auth, a: auth.permissions.list(a.contains),
            "list the catalog",
            (arg("--contains", metavar="TEXT", help="only names or descriptions containing TEXT"),),
        ),
        "remove": Command(
            _remove_permission,
            "remove a permission no registration holds",
            (arg("name", metavar="NAME", help="the permission to remove"),),
        ),
    },
    "registrations": {
        "create": Command(
            _create,
            "create a registration and print its first secret (shown only once)",
            (
                arg("--tenant", required=True, help="the tenant (site) the registration belongs to"),
                arg("--name", required=True, help="a name admins will recognise it by"),
                arg("--description", metavar="TEXT", help="what it is for (optional)"),
                _SCOPE,
                _CUSTOMER_SCOPE,
                _SECRET_LIFETIME,
                arg("--expires", type=_moment, metavar="DATE", help="when the registration itself expires"),
                arg("--disabled", action="store_true", help="create it paused"),
            ),
        ),
        "list": Command(
            _list_registrations,
            "list registrations: a tenant's, or every tenant's",
            (
                arg("--tenant", help="only this tenant's (default: every tenant's)"),
                arg("--name-contains", metavar="TEXT", help="only names containing TEXT (any case)"),
                arg(
                    "--expiring-within",
                    type=int,
                    metavar="DAYS",
                    help="only those that stop working within DAYS days (the expired ones too)",
                ),
                arg(
                    "--sort",
                    choices=SORTS,
                    default="created_at",
                    help="the order (default: created_at, oldest first)",
                ),
                arg("--desc", action="store_true", help="the reverse order"),
                arg("--offset", type=int, default=0, help="skip this many (default 0)"),
                arg("--limit", type=int, default=50, help="at most this many (default 50, at most 500)"),
                arg(
                    "--all",
                    action="store_true",
                    help="every match, page after page (ignores --offset and --limit)",
                ),
            ),
        ),
        "show": Command(
            lambda auth, a: _registrations(auth, a).get(a.client_id), "show a registration", (_CLIENT_ID,)
        ),
        "update": Command(
            _update,
            "change a registration's name, description, permissions or customer scope",
            (
                _CLIENT_ID,
                arg("--name", help="the new name"),
                arg("--description", metavar="TEXT", help="the new description"),
                one_of(_SCOPE, arg("--no-scopes", action="store_true", help="remove every permission")),
                _CUSTOMER_SCOPE,
            ),
        ),
        "rotate-secret": Command(
            _rotate_secret,
            "replace every secret with a new one (the old ones stop working at once, or after --grace)",
            (
                _CLIENT_ID,
                _SECRET_LIFETIME,
                arg(
                    "--grace",
                    type=_duration,
                    metavar="DURATION",
                    help="keep the old secrets working this long (e.g. 24h, 90m, 7d; at most "
                    "max_rotation_grace, 7 days by default), so a fleet can switch without downtime",
                ),
            ),
        ),
        "add-secret": Command(
            lambda auth, a: _registrations(auth, a).add_secret(
                a.client_id, secret_days=a.secret_days, secret_expires_at=a.secret_expires
            ),
            "add a second secret beside the current one",
            (_CLIENT_ID, _SECRET_LIFETIME),
        ),
        "delete-secret": Command(
            lambda auth, a: _registrations(auth, a).delete_secret(a.client_id, a.secret_id),
            "delete one secret",
            (
                _CLIENT_ID,
                arg("secret_id", metavar="SECRET_ID", help="the secret's id (see registrations show)"),
            ),
        ),
        "add-certificate": Command(
            _add_certificate,
            "add a certificate whose private key signs client assertions",
            (_CLIENT_ID, arg("--certificate", required=True, metavar="FILE", help="a .pem or .cer file")),
        ),
        "remove-certificate": Command(
            lambda auth, a: _registrations(auth, a).remove_certificate(a.client_id, a.certificate_id),
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
            lambda auth, a: _registrations(auth, a).disable(a.client_id),
            "pause: its tokens stop working",
            (_CLIENT_ID,),
        ),
        "enable": Command(
            lambda auth, a: _registrations(auth, a).enable(a.client_id),
            "restore a paused registration",
            (_CLIENT_ID,),
        ),
        "renew": Command(
            lambda auth, a: _registrations(auth, a).renew(a.client_id, days=a.days, expires_at=a.expires),
            "move the registration's own expiry later",
            (
                _CLIENT_ID,
                one_of(
                    arg("--days", type=int, help="expire this many days from now"),
                    arg("--expires", type=_moment, metavar="DATE", help="expire at this date (ISO 8601)"),
                    required=True,
                ),
            ),
        ),
        "delete": Command(
            _delete,
            "delete registrations (their tokens stop working)",
            (arg("client_ids", nargs="+", metavar="CLIENT_ID", help="one or more client IDs"), _ONLY_TENANT),
        ),
    },
    "refresh-tokens": {
        "create": Command(
            _create_refresh_token,
            "create a person's API refresh token and print it (shown only once)",
            (
                arg("--user", required=True, help="the person's user id"),
                _TOKEN_SCOPE,
                arg("--tenant", help="the tenant its access tokens name"),
                arg(
                    "--customer-scope",
                    metavar="SCOPE",
                    help="the customers its access tokens reach: 'all' (default), 'customers:ID,...' or 'groups:ID,...'",
                ),
            ),
        ),
        "list": Command(
            _list_refresh_tokens,
            "list a person's refresh tokens (never their values)",
            (arg("--user", required=True, help="the person's user id"),),
        ),
        "revoke": Command(
            _revoke_refresh_token,
            "revoke a refresh token and every access token it produced",
            (arg("token_id", metavar="ID", help="the refresh token's id (see refresh-tokens list)"),),
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
        "withdraw": Command(
            _withdraw_key,
            "withdraw a leaked key at once: its tokens are refused everywhere within a second",
            (arg("kid", metavar="KID", help="the key's id (see keys list)"),),
        ),
        "generate-kek": Command(
            lambda auth, a: GeneratedKek(new_key_encryption_key()),
            "print a new key-encryption key for EMBEDAUTH_KEY_ENCRYPTION_KEY (nothing is stored)",
        ),
    },
}

#: The verbs without a group: ``embedauth audit``, ``embedauth notify``, ``embedauth bench``.
TOP_LEVEL: dict[str, Command] = {
    "audit": Command(
        _audit,
        "the audit trail, newest first: admin actions, tokens issued and refused, notices sent",
        (
            arg("--client-id", metavar="CLIENT_ID", help="only the records of this registration"),
            arg("--since", type=_moment, metavar="DATE", help="only records at or after DATE (ISO 8601)"),
            arg("--tenant", help="only this tenant's records (default: every record)"),
            arg("--offset", type=int, default=0, help="skip this many (default 0)"),
            arg("--limit", type=int, default=50, help="at most this many (default 50, at most 500)"),
        ),
    ),
    "notify": Command(
        lambda auth, a: auth.lifecycle.sweep(),
        "run one expiry sweep: send the notices due (each once per deployment), revoke idle "
        "refresh tokens, prune the audit trail",
    ),
    "bench": Command(
        _bench,
        "measure token verification and issuing on this machine against a hand-written floor on "
        "cryptography, PyJWT, joserfc and Authlib (needs embedauth[bench]; no storage: it builds "
        "memory:// instances of its own): a Markdown table on stdout, with DESIGN.md's targets, "
        "about half a minute; a progress bar on stderr when stderr is a terminal (with --json too)",
        (
            arg(
                "--quick", action="store_true", help="fewer tokens per round: a few seconds, rougher figures"
            ),
            arg(
                "--rounds",
                type=_positive,
                metavar="N",
                help=f"interleaved rounds (default {benchmark.DEFAULT.rounds}, "
                f"{benchmark.QUICK.rounds} with --quick); the figures are medians over them",
            ),
        ),
        storage=False,
    ),
}

GROUP_HELP = {
    "admins": "admin registrations for the management API and admin page",
    "apps": "multi-tenant apps and the tenants' connections of them",
    "permissions": "the permission catalog",
    "registrations": "app registrations",
    "refresh-tokens": "people's API refresh tokens",
    "keys": "the token-signing keys",
}


SERVE_HELP = (
    "serve the OAuth endpoints, the admin page (/admin/) and its API, and the demo API (/demo/public,"
    " /demo/whoami, /demo/devices) with uvicorn (one worker; httptools and uvloop when installed, as"
    " the starlette extra installs them; no access log); with EMBEDAUTH_SWEEP_INTERVAL=N, also the"
    " expiry sweep every N seconds"
)


def _uvicorn_stack() -> tuple[str, str]:
    """uvicorn's ``loop`` and ``http``: uvloop and httptools when installed (named, not ``auto``,
    so the startup line says what runs), else asyncio and h11."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return loop, http


def serve(auth: EmbedAuth, a: argparse.Namespace) -> None:
    """``embedauth serve``: the OAuth endpoints (and, unless ``--no-demo``, the demo API) under
    uvicorn, until interrupted: one worker on httptools and uvloop when installed, no access log."""
    extra = "flask" if a.framework == "flask" else "starlette"
    try:
        import uvicorn

        from embedauth.cli.demo import asgi_app

        app = asgi_app(auth, a.framework, demo=not a.no_demo)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"embedauth serve needs {exc.name}: pip install 'embedauth[{extra}]'"
        ) from None
    loop, http = _uvicorn_stack()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("embedauth").setLevel(logging.INFO)  # refusals and their reasons
    auth.keys.signing_key()  # the first key exists before the first request
    auth.prepare()  # keys and revocations loaded; changes made elsewhere arrive within a second
    auth.lifecycle.start()  # every sweep_interval seconds, when set
    address = f"http://{a.host}:{a.port}"
    issuer = "" if auth.settings.issuer.rstrip("/") == address else f", issuer {auth.settings.issuer}"
    demo = "" if a.no_demo else ", with the demo API"
    stack = f"uvicorn {uvicorn.__version__}, {http} + {loop}, 1 worker, no access log"
    print(
        f"{PROG}: serving on {address} ({a.framework}{demo}{issuer}; {stack}); Ctrl-C stops", file=sys.stderr
    )
    uvicorn.run(app, host=a.host, port=a.port, loop=loop, http=http, access_log=False, log_level="warning")
