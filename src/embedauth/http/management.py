"""The management API: the JSON operations behind the admin page, free of any web framework.

One table, :data:`OPERATIONS`, says each operation's method, path, request shapes and answer; the
dispatcher validates against it and the OpenAPI 3.1 document is generated from it, so the document
cannot say what the handlers do not do. Bodies and queries are ``TypedDict`` shapes validated by
pydantic (a refused field is a 422 naming it); answers are the shapes of
:mod:`embedauth.public_json`, the CLI's ``--json``.

Every operation runs on an :class:`~embedauth.registry.admin.AdminScope`: an admin guard (the
embedding app's, or :class:`BearerAdmins` for ``embedauth serve``) says who the caller is and which
tenants they manage, and another tenant's registration is then a 404, as one that does not exist.

Decisions:

* **Errors are RFC 9457 problem details** (``application/problem+json``, ``type`` ``about:blank``
  and the status phrase as ``title``); a 422 adds ``errors``: ``[{"field", "reason"}]``.
* **Every ``POST`` and ``PATCH`` must say ``Content-Type: application/json``** (an empty body is
  ``{}`` where nothing is required), so that a cross-site form cannot drive the API through an
  embedding app's session cookie: a browser sends that type cross-site only after a CORS preflight.
* **Nothing is half-written**: each change is one call of the services, which write atomically.
* **Answers are never cached** (``Cache-Control: no-store``: a new secret is in some of them).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal, Required, TypeAlias

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from embedauth import __version__, public_json, validation
from embedauth.clock import utcnow
from embedauth.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageError,
)
from embedauth.http import messages
from embedauth.http.bearer import BearerError, BearerGuard, TokenVerifier
from embedauth.models import AuditRecord, Page
from embedauth.registry.admin import Admin, AdminScope
from embedauth.registry.audit import MAX_AUDIT_OFFSET, MAX_AUDIT_PAGE
from embedauth.registry.registrations import MAX_PAGE
from embedauth.storage.base import RegistrationSort

if TYPE_CHECKING:
    from embedauth.core import EmbedAuth

__all__ = [
    "ADMIN_SCOPE",
    "CATALOG_SCOPE",
    "MAX_BODY_BYTES",
    "OPERATIONS",
    "TOO_LARGE",
    "UNAVAILABLE",
    "AdminRefused",
    "BearerAdmins",
    "ManagementAPI",
    "Operation",
]

log = logging.getLogger("embedauth.management")

#: The scope that makes an access token an admin's, for the tenant it names (:class:`BearerAdmins`).
ADMIN_SCOPE = "embedauth:admin"
#: The scope that also lets it change the permission catalog.
CATALOG_SCOPE = "embedauth:catalog"
#: The largest request body read (a certificate upload is the largest: a few KiB).
MAX_BODY_BYTES = 256 * 1024
PROBLEM = "application/problem+json"
_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))

# ---------------------------------------------------------------------------- the admin guard


class AdminRefused(Exception):
    """An admin guard's refusal: 401 (who are you?) or 403 (not an admin), with its headers."""

    def __init__(self, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = tuple(headers)


class BearerAdmins:
    """The admin guard of ``embedauth serve``: a bearer access token holding :data:`ADMIN_SCOPE`.

    The admin is the token's subject; they manage the tenant the token names (the tenant of the
    registration it was issued to), and the catalog too when it also holds :data:`CATALOG_SCOPE`.
    """

    def __init__(self, verifier: TokenVerifier, *, realm: str) -> None:
        self.guard = BearerGuard(verifier, realm=realm)

    def admin(self, authorization: str | None) -> Admin:
        """The admin behind an ``Authorization`` header, or :class:`AdminRefused` (RFC 6750 challenge)."""
        try:
            principal = self.guard.check(authorization, [ADMIN_SCOPE])
        except BearerError as error:
            response = error.response(self.guard.realm)
            challenge = response.header("WWW-Authenticate") or "Bearer"
            detail = error.description or "an admin's bearer token is required"
            raise AdminRefused(error.status, detail, (("WWW-Authenticate", challenge),)) from None
        if principal.tenant is None:
            raise AdminRefused(403, "the access token names no tenant to administer")
        return Admin(
            identity=principal.subject,
            tenants=frozenset({principal.tenant}),
            manages_catalog=CATALOG_SCOPE in principal.scopes,
        )


# ---------------------------------------------------------------------------- request shapes

_Config = ConfigDict(extra="forbid")


def _pattern(regex: str) -> dict[str, Any]:
    """A pattern for the document only: the services' parsers check it, in their own words."""
    return {"pattern": regex}


# The services' own parsers, so that a 422 names every refused field at once (their ValueErrors
# become pydantic errors at the field); the services parse again, so nothing depends on this.
_Tenant = Annotated[
    str,
    Field(max_length=128, json_schema_extra=_pattern(f"^{validation.IDENTIFIER.pattern}$")),
    AfterValidator(lambda v: validation.parse_identifier(v, "tenant")),
]
_NO_CONTROL = validation.SEARCH_FORBIDDEN.pattern[1:-1]  # the ranges, for character classes
_Name = Annotated[
    str,
    Field(
        max_length=200, json_schema_extra=_pattern(f"^[^{_NO_CONTROL}]*[^\\s{_NO_CONTROL}][^{_NO_CONTROL}]*$")
    ),
    AfterValidator(validation.parse_name),
]
_Description = Annotated[str | None, Field(max_length=2000), AfterValidator(validation.parse_description)]
_Permission = Annotated[
    str,
    Field(max_length=128, json_schema_extra=_pattern(f"^{validation.PERMISSION_NAME.pattern}$")),
    AfterValidator(validation.parse_permission_name),
]
_Scopes = Annotated[list[_Permission], Field(max_length=500)]
_Search = Annotated[str, Field(max_length=200, json_schema_extra=_pattern(f"^[^{_NO_CONTROL}]*$"))]
_CustomerScope = Annotated[
    str, Field(max_length=2000), AfterValidator(lambda v: str(validation.parse_customer_scope(v)))
]
_Days = Annotated[int, Field(ge=1, le=36500)]


class NewRegistration(TypedDict, total=False):
    """``POST /registrations``: a registration and its first secret."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    tenant: Required[_Tenant]
    name: Required[_Name]
    description: _Description
    scopes: _Scopes
    customer_scope: _CustomerScope
    secret_days: _Days
    secret_expires_at: AwareDatetime
    expires_at: AwareDatetime | None
    enabled: bool


class RegistrationChanges(TypedDict, total=False):
    """``PATCH /registrations/{client_id}``: the fields to change (omitted ones stay)."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    name: _Name
    description: _Description
    scopes: _Scopes
    customer_scope: _CustomerScope


class NewSecret(TypedDict, total=False):
    """``POST …/rotate-secret`` and ``POST …/secrets``: the new secret's lifetime (``days`` is
    another name for ``secret_days``; at most one of the three)."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    secret_days: _Days
    days: _Days
    secret_expires_at: AwareDatetime


class Rotation(NewSecret, total=False):
    """``POST …/rotate-secret``: the new secret's lifetime, and how long the old ones keep working
    (``grace_seconds``, up to ``max_rotation_grace``; 0 or omitted: they stop at once)."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    grace_seconds: Annotated[int, Field(ge=0, le=366 * 86400)]


class NewCertificate(TypedDict):
    """``POST …/certificates``: a PEM certificate, or a DER one in base64."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    certificate: Annotated[str, Field(max_length=MAX_BODY_BYTES)]


class Renewal(TypedDict, total=False):
    """``POST …/renew``: ``days`` from now, or a date (one of the two)."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    days: _Days
    expires_at: AwareDatetime


class ClientIds(TypedDict):
    """``POST /registrations/delete``."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    client_ids: Annotated[
        list[Annotated[str, Field(max_length=255)]], Field(min_length=1, max_length=MAX_PAGE)
    ]


class NewPermission(TypedDict, total=False):
    """``POST /permissions``."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    name: Required[_Permission]
    description: _Description
    access: Literal["read", "write"]


class NewRefreshToken(TypedDict, total=False):
    """``POST /refresh-tokens``: what its access tokens may do; the tenant defaults to the admin's only one."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    scopes: _Scopes
    tenant: _Tenant
    customer_scope: _CustomerScope


class NewApp(TypedDict, total=False):
    """``POST /apps``: a multi-tenant app; ``owner`` defaults to the admin's only tenant."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    owner: _Tenant
    name: Required[_Name]
    description: _Description
    scopes: _Scopes
    allowed_tenants: Annotated[list[_Tenant], Field(max_length=1000)] | None


class AppChanges(TypedDict, total=False):
    """``PATCH /apps/{app_id}``: the fields to change (omitted ones stay)."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    name: _Name
    description: _Description
    scopes: _Scopes
    allowed_tenants: Annotated[list[_Tenant], Field(max_length=1000)] | None


class NewConnection(TypedDict, total=False):
    """``POST /connectable-apps/{app_id}/connect``: the permissions allowed (all it requests when
    omitted), for which tenant (the admin's only one by default), and the secret's lifetime."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    tenant: _Tenant
    scopes: _Scopes
    secret_days: _Days
    secret_expires_at: AwareDatetime


class Nothing(TypedDict):
    """A ``POST`` that takes no fields (``{}``, or an empty body)."""

    __pydantic_config__ = _Config  # type: ignore[misc]


class RegistrationQuery(TypedDict, total=False):
    """``GET /registrations``: which page, in which order."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    tenant: _Tenant
    name_contains: _Search
    expires_within_days: Annotated[int, Field(ge=0, le=36500)]
    sort: RegistrationSort
    order: Literal["asc", "desc"]
    offset: Annotated[int, Field(ge=0, le=10**9)]
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)]


class AuditQuery(TypedDict, total=False):
    """``GET /audit``: the admin's tenants' records (or one tenant's), newest first."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    tenant: _Tenant
    client_id: Annotated[str, Field(max_length=255)]
    since: AwareDatetime
    offset: Annotated[int, Field(ge=0, le=MAX_AUDIT_OFFSET)]
    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_PAGE)]


class RegistrationAuditQuery(TypedDict, total=False):
    """``GET /registrations/{client_id}/audit``: one registration's records, newest first."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    since: AwareDatetime
    offset: Annotated[int, Field(ge=0, le=MAX_AUDIT_OFFSET)]
    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_PAGE)]


class PermissionQuery(TypedDict, total=False):
    """``GET /permissions``: a substring of the name or description."""

    __pydantic_config__ = _Config  # type: ignore[misc]
    contains: _Search


class NoQuery(TypedDict):
    """An operation that takes no query parameters."""

    __pydantic_config__ = _Config  # type: ignore[misc]


# ---------------------------------------------------------------------------- answer shapes


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Session(_Answer):
    """Who is signed in: their identity, tenants, and whether they manage the catalog."""

    admin: str
    tenants: list[str]
    manages_catalog: bool


class Tenants(_Answer):
    """The tenants the admin manages."""

    items: list[str]


class RegistrationPage(_Answer):
    """One page of registrations and the count of every match."""

    items: list[public_json.Registration]
    total: int
    offset: int
    limit: int


class AuditPage(_Answer):
    """One page of audit records, newest first, and the count of every match."""

    items: list[public_json.AuditRecord]
    total: int
    offset: int
    limit: int


class Deleted(_Answer):
    """What a bulk delete removed, and the client IDs it did not find (or may not see)."""

    deleted: list[str]
    not_found: list[str]


class Permissions(_Answer):
    """The catalog, filtered."""

    items: list[public_json.Permission]


class RefreshTokens(_Answer):
    """The admin's own refresh tokens."""

    items: list[public_json.RefreshToken]


class Apps(_Answer):
    """The apps the admin's tenants own."""

    items: list[public_json.App]


class AppConnections(_Answer):
    """Connections of apps, each with the permissions its tenant allowed."""

    items: list[public_json.AppConnection]


class ConnectableApp(_Answer):
    """An app the admin's tenants may connect: the permissions it requests, described, and which
    of the admin's tenants have connected it."""

    app_id: str
    owner: str
    name: str
    description: str
    permissions: list[public_json.Permission]
    connected: list[str]


class ConnectableApps(_Answer):
    """The apps the admin's tenants may connect."""

    items: list[ConnectableApp]


class FieldError(_Answer):
    """One refused field of a 422."""

    field: str
    reason: str


class Problem(_Answer):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


# ---------------------------------------------------------------------------- the operations


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the admin's scope, the path's parameters, the query and the body."""

    scope: AdminScope
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Mapping[str, Any]
    now: datetime


Handler: TypeAlias = Callable[[Call], BaseModel | None]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the API: the row of :data:`OPERATIONS` that the dispatcher and the
    OpenAPI document both read."""

    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    name: str
    summary: str
    run: Handler
    answer: type[BaseModel] | None
    status: int = 200
    body: type | None = None
    query: type = NoQuery
    pattern: re.Pattern[str] = field(init=False)
    params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        params = tuple(re.findall(r"{(\w+)}", self.path))
        # The last parameter of /permissions/{name} may hold "/" (permission names do).
        regex = re.sub(
            r"{(\w+)}",
            lambda m: f"(?P<{m[1]}>.+)" if m[1] == "name" else f"(?P<{m[1]}>[^/]+)",
            re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}"),
        )
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


def _registration(call: Call) -> public_json.Registration:
    return public_json.Registration.of(call.scope.registrations.get(call.path["client_id"]))


def _list(call: Call) -> RegistrationPage:
    q = call.query
    days = q.get("expires_within_days")
    page = call.scope.registrations.list(
        q.get("tenant"),
        name_contains=q.get("name_contains"),
        expires_before=None if days is None else call.now + timedelta(days=days),
        sort=q.get("sort", "created_at"),
        descending=q.get("order") == "desc",
        offset=q.get("offset", 0),
        limit=q.get("limit", 50),
    )
    items = [public_json.Registration.of(r) for r in page.items]
    return RegistrationPage(items=items, total=page.total, offset=page.offset, limit=page.limit)


def _create(call: Call) -> public_json.CreatedSecret:
    return public_json.CreatedSecret.of_created(call.scope.registrations.create(**call.body))


def _update(call: Call) -> public_json.Registration:
    return public_json.Registration.of(call.scope.registrations.update(call.path["client_id"], **call.body))


def _delete(call: Call) -> None:
    call.scope.registrations.delete(call.path["client_id"])


def _delete_many(call: Call) -> Deleted:
    asked = list(dict.fromkeys(call.body["client_ids"]))
    deleted = call.scope.registrations.delete_many(asked)
    return Deleted(deleted=deleted, not_found=[cid for cid in asked if cid not in deleted])


def _secret_lifetime(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's lifetime as the services take it: ``days`` is ``secret_days``."""
    options = dict(body)
    if "days" in options:
        if "secret_days" in options or "secret_expires_at" in options:
            raise InvalidInput("give one of days, secret_days and secret_expires_at", field="days")
        options["secret_days"] = options.pop("days")
    return options


def _rotate(call: Call) -> public_json.CreatedSecret:
    options = _secret_lifetime(call.body)
    grace = options.pop("grace_seconds", 0)
    try:
        created = call.scope.registrations.rotate_secret(
            call.path["client_id"], grace=timedelta(seconds=grace) if grace else None, **options
        )
    except InvalidInput as exc:
        if exc.field == "grace":
            raise InvalidInput(str(exc).replace("grace", "grace_seconds", 1), field="grace_seconds") from None
        raise
    return public_json.CreatedSecret.of_created(created)


def _audit_page(page: Page[AuditRecord]) -> AuditPage:
    items = [public_json.AuditRecord.of(r) for r in page.items]
    return AuditPage(items=items, total=page.total, offset=page.offset, limit=page.limit)


def _audit(call: Call) -> AuditPage:
    q = call.query
    return _audit_page(
        call.scope.audit(
            client_id=q.get("client_id"),
            tenant=q.get("tenant"),
            since=q.get("since"),
            offset=q.get("offset", 0),
            limit=q.get("limit", 50),
        )
    )


def _registration_audit(call: Call) -> AuditPage:
    q = call.query
    return _audit_page(
        call.scope.registration_audit(
            call.path["client_id"], since=q.get("since"), offset=q.get("offset", 0), limit=q.get("limit", 50)
        )
    )


def _add_secret(call: Call) -> public_json.CreatedSecret:
    created = call.scope.registrations.add_secret(call.path["client_id"], **_secret_lifetime(call.body))
    return public_json.CreatedSecret.of_created(created)


def _delete_secret(call: Call) -> public_json.Registration:
    registrations, path = call.scope.registrations, call.path
    return public_json.Registration.of(registrations.delete_secret(path["client_id"], path["secret_id"]))


def _certificate_bytes(text: str) -> bytes | str:
    """PEM as it is; anything else is base64 of DER."""
    if text.lstrip().startswith("-----BEGIN"):
        return text
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("a certificate is PEM text or base64 DER", field="certificate") from None


def _add_certificate(call: Call) -> public_json.CertificateAdded:
    registrations, client_id = call.scope.registrations, call.path["client_id"]
    credential = registrations.add_certificate(client_id, _certificate_bytes(call.body["certificate"]))
    return public_json.CertificateAdded.of_added(registrations.get(client_id), credential)


def _remove_certificate(call: Call) -> public_json.Registration:
    registrations, path = call.scope.registrations, call.path
    return public_json.Registration.of(
        registrations.remove_certificate(path["client_id"], path["certificate_id"])
    )


def _disable(call: Call) -> public_json.Registration:
    return public_json.Registration.of(call.scope.registrations.disable(call.path["client_id"]))


def _enable(call: Call) -> public_json.Registration:
    return public_json.Registration.of(call.scope.registrations.enable(call.path["client_id"]))


def _renew(call: Call) -> public_json.Registration:
    body = call.body
    renewed = call.scope.registrations.renew(
        call.path["client_id"], days=body.get("days"), expires_at=body.get("expires_at")
    )
    return public_json.Registration.of(renewed)


def _session(call: Call) -> Session:
    admin = call.scope.admin
    return Session(admin=admin.identity, tenants=sorted(admin.tenants), manages_catalog=admin.manages_catalog)


def _tenants(call: Call) -> Tenants:
    return Tenants(items=sorted(call.scope.admin.tenants))


def _permissions(call: Call) -> Permissions:
    return Permissions(
        items=[public_json.Permission.of(p) for p in call.scope.permissions(call.query.get("contains"))]
    )


def _add_permission(call: Call) -> public_json.Permission:
    return public_json.Permission.of(call.scope.add_permission(**call.body))


def _remove_permission(call: Call) -> None:
    call.scope.remove_permission(call.path["name"])


def _refresh_tokens(call: Call) -> RefreshTokens:
    return RefreshTokens(items=[public_json.RefreshToken.of(t) for t in call.scope.refresh_tokens()])


def _create_refresh_token(call: Call) -> public_json.CreatedRefreshToken:
    return public_json.CreatedRefreshToken.of_created(call.scope.create_refresh_token(**call.body))


def _revoke_refresh_token(call: Call) -> public_json.RefreshToken:
    return public_json.RefreshToken.of(call.scope.revoke_refresh_token(call.path["token_id"]))


def _apps(call: Call) -> Apps:
    return Apps(items=[public_json.App.of(a) for a in call.scope.apps.list()])


def _create_app(call: Call) -> public_json.App:
    return public_json.App.of(call.scope.apps.create(**call.body))


def _app(call: Call) -> public_json.App:
    return public_json.App.of(call.scope.apps.get(call.path["app_id"]))


def _update_app(call: Call) -> public_json.App:
    return public_json.App.of(call.scope.apps.update(call.path["app_id"], **call.body))


def _delete_app(call: Call) -> None:
    call.scope.apps.delete(call.path["app_id"])


def _app_connections(call: Call) -> AppConnections:
    links = call.scope.apps.connections(call.path["app_id"])
    return AppConnections(items=[public_json.AppConnection.of(link) for link in links])


def _connectable(call: Call) -> ConnectableApps:
    scope = call.scope
    catalog = {p.name: p for p in scope.permissions()}
    connected: dict[str, list[str]] = {}
    for link in scope.apps.my_connections():
        connected.setdefault(link.connection.app_id, []).append(link.connection.tenant)
    items = [
        ConnectableApp(
            app_id=app.app_id,
            owner=app.owner,
            name=app.name,
            description=app.description,
            permissions=[public_json.Permission.of(catalog[s]) for s in app.scopes if s in catalog],
            connected=sorted(connected.get(app.app_id, [])),
        )
        for app in scope.apps.connectable()
    ]
    return ConnectableApps(items=items)


def _connect(call: Call) -> public_json.Connected:
    return public_json.Connected.of_connected(call.scope.apps.connect(call.path["app_id"], **call.body))


def _connections(call: Call) -> AppConnections:
    return AppConnections(items=[public_json.AppConnection.of(c) for c in call.scope.apps.my_connections()])


_R = "/registrations/{client_id}"
_A = "/apps/{app_id}"
_REG = public_json.Registration

#: Every operation of the API, in the order the OpenAPI document lists them.
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/session", "getSession", "Who is signed in", _session, Session),
    Operation("GET", "/tenants", "listTenants", "The tenants the admin manages", _tenants, Tenants),
    Operation(
        "GET",
        "/registrations",
        "listRegistrations",
        "One page of the admin's registrations",
        _list,
        RegistrationPage,
        query=RegistrationQuery,
    ),
    Operation(
        "POST",
        "/registrations",
        "createRegistration",
        "Create a registration and its first secret (shown only here)",
        _create,
        public_json.CreatedSecret,
        201,
        NewRegistration,
    ),
    Operation(
        "POST",
        "/registrations/delete",
        "deleteRegistrations",
        "Delete several",
        _delete_many,
        Deleted,
        body=ClientIds,
    ),
    Operation("GET", _R, "getRegistration", "A registration", _registration, _REG),
    Operation(
        "PATCH",
        _R,
        "updateRegistration",
        "Edit name, description, permissions, customer scope",
        _update,
        _REG,
        body=RegistrationChanges,
    ),
    Operation("DELETE", _R, "deleteRegistration", "Delete a registration", _delete, None, 204),
    Operation(
        "POST",
        _R + "/rotate-secret",
        "rotateSecret",
        "A new secret; every earlier one stops working at once, or at the end of grace_seconds",
        _rotate,
        public_json.CreatedSecret,
        body=Rotation,
    ),
    Operation(
        "GET",
        _R + "/audit",
        "getRegistrationAudit",
        "One registration's audit trail, newest first (the notices sent to it included)",
        _registration_audit,
        AuditPage,
        query=RegistrationAuditQuery,
    ),
    Operation(
        "POST",
        _R + "/secrets",
        "addSecret",
        "A second secret, for a switch without downtime",
        _add_secret,
        public_json.CreatedSecret,
        201,
        NewSecret,
    ),
    Operation("DELETE", _R + "/secrets/{secret_id}", "deleteSecret", "Delete a secret", _delete_secret, _REG),
    Operation(
        "POST",
        _R + "/certificates",
        "addCertificate",
        "Upload a certificate (PEM, or DER in base64)",
        _add_certificate,
        public_json.CertificateAdded,
        201,
        NewCertificate,
    ),
    Operation(
        "DELETE",
        _R + "/certificates/{certificate_id}",
        "removeCertificate",
        "Remove a certificate (by id or thumbprint)",
        _remove_certificate,
        _REG,
    ),
    Operation(
        "POST",
        _R + "/disable",
        "disableRegistration",
        "Pause: its tokens stop working",
        _disable,
        _REG,
        body=Nothing,
    ),
    Operation("POST", _R + "/enable", "enableRegistration", "Restore", _enable, _REG, body=Nothing),
    Operation(
        "POST", _R + "/renew", "renewRegistration", "Move its own expiry later", _renew, _REG, body=Renewal
    ),
    Operation(
        "GET",
        "/audit",
        "listAudit",
        "The audit trail of the admin's tenants, newest first",
        _audit,
        AuditPage,
        query=AuditQuery,
    ),
    Operation(
        "GET",
        "/permissions",
        "listPermissions",
        "The permission catalog",
        _permissions,
        Permissions,
        query=PermissionQuery,
    ),
    Operation(
        "POST",
        "/permissions",
        "addPermission",
        "Add a permission (catalog admins)",
        _add_permission,
        public_json.Permission,
        201,
        NewPermission,
    ),
    Operation(
        "DELETE",
        "/permissions/{name}",
        "removePermission",
        "Remove a permission no one holds (catalog admins)",
        _remove_permission,
        None,
        204,
    ),
    Operation("GET", "/apps", "listApps", "The apps the admin's tenants own", _apps, Apps),
    Operation(
        "POST", "/apps", "createApp", "Define a multi-tenant app", _create_app, public_json.App, 201, NewApp
    ),
    Operation("GET", _A, "getApp", "One of the admin's tenants' apps", _app, public_json.App),
    Operation(
        "PATCH",
        _A,
        "updateApp",
        "Change an app (narrowed permissions narrow every connection)",
        _update_app,
        public_json.App,
        body=AppChanges,
    ),
    Operation(
        "DELETE", _A, "deleteApp", "Delete an app and every connection's registration", _delete_app, None, 204
    ),
    Operation(
        "GET",
        _A + "/connections",
        "listAppConnections",
        "Which tenants connected the app, with which permissions (never their secrets)",
        _app_connections,
        AppConnections,
    ),
    Operation(
        "GET",
        "/connectable-apps",
        "listConnectableApps",
        "The apps the admin's tenants may connect, and what each requests",
        _connectable,
        ConnectableApps,
    ),
    Operation(
        "POST",
        "/connectable-apps/{app_id}/connect",
        "connectApp",
        "Connect an app for a tenant: its own registration and secret (shown only here)",
        _connect,
        public_json.Connected,
        201,
        NewConnection,
    ),
    Operation(
        "GET",
        "/connections",
        "listConnections",
        "The admin's tenants' connections of apps (each is a registration of that tenant)",
        _connections,
        AppConnections,
    ),
    Operation(
        "GET",
        "/refresh-tokens",
        "listRefreshTokens",
        "The admin's own refresh tokens",
        _refresh_tokens,
        RefreshTokens,
    ),
    Operation(
        "POST",
        "/refresh-tokens",
        "createRefreshToken",
        "A refresh token of the admin's own (its value shown only here)",
        _create_refresh_token,
        public_json.CreatedRefreshToken,
        201,
        NewRefreshToken,
    ),
    Operation(
        "POST",
        "/refresh-tokens/{token_id}/revoke",
        "revokeRefreshToken",
        "Revoke one of the admin's refresh tokens",
        _revoke_refresh_token,
        public_json.RefreshToken,
        body=Nothing,
    ),
)

OPENAPI_PATH = "/openapi.json"

# ---------------------------------------------------------------------------- answers


_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}  # RFC 9110's names


def _problem(
    status: int, detail: str, *, errors: Sequence[FieldError] = (), headers: Sequence[tuple[str, str]] = ()
) -> messages.Response:
    problem = Problem(
        title=_TITLES.get(status) or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=list(errors) or None,
    )
    body = problem.model_dump(mode="json", exclude_none=True)
    return messages.Response(status, (("Content-Type", PROBLEM), *_HEADERS, *headers), body)


#: The answer while storage is unavailable: the request may succeed in a moment.
UNAVAILABLE = _problem(503, "temporarily unavailable; try again in a moment", headers=(("Retry-After", "1"),))
#: The answer to a body over :data:`MAX_BODY_BYTES` (adapters stop reading there).
TOO_LARGE = _problem(413, f"the body is larger than {MAX_BODY_BYTES} bytes")


def _field(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _validation_problem(error: ValidationError) -> messages.Response:
    errors = [
        FieldError(
            field=_field(e["loc"]),
            reason=str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"],
        )
        for e in error.errors(include_url=False)
    ]
    return _problem(422, "a field was refused", errors=errors)


def _error_response(exc: Exception, what: str) -> messages.Response:
    """The problem details of a service's refusal."""
    if isinstance(exc, NotFound):
        return _problem(404, str(exc))
    if isinstance(exc, InvalidInput):
        return _problem(422, str(exc), errors=[FieldError(field=exc.field or "body", reason=str(exc))])
    if isinstance(exc, Forbidden):
        return _problem(403, str(exc))
    if isinstance(exc, Conflict):
        return _problem(409, str(exc))
    if isinstance(exc, StorageError | Busy):
        return UNAVAILABLE
    log.error("embedauth: %s failed", what, exc_info=exc)
    return _problem(500, "the request failed; the server's log says why")


# ---------------------------------------------------------------------------- the dispatcher


class ManagementAPI:
    """The API of ``auth`` under ``prefix`` (default ``settings.admin_api_prefix``).

    Adapters call :meth:`handle` with the request (its body read up to :data:`MAX_BODY_BYTES`) and
    the admin their guard found (None: nobody signed in); ``GET {prefix}/openapi.json`` needs no
    admin. ``security`` is the OpenAPI security scheme to declare (the bearer one by default).
    """

    def __init__(
        self,
        auth: EmbedAuth,
        *,
        prefix: str | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.auth = auth
        self.prefix = (auth.settings.admin_api_prefix if prefix is None else prefix).rstrip("/")
        self.security = (
            dict(security)
            if security is not None
            else {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )
        self._adapters: dict[Operation, tuple[TypeAdapter[Any], TypeAdapter[Any] | None]] = {
            op: (TypeAdapter(op.query), None if op.body is None else TypeAdapter(op.body))
            for op in OPERATIONS
        }
        self._openapi: dict[str, Any] | None = None

    def path_of(self, url: str) -> str | None:
        """The path of ``url`` below the prefix (``/registrations``…), or None when outside it."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :] or "/"
        return None

    def handle(self, request: messages.Request, identify: Callable[[], Admin | None]) -> messages.Response:
        """The answer to ``request``; ``identify`` is the admin guard, asked only when an operation
        needs an admin (it may raise :class:`AdminRefused`)."""
        path = self.path_of(request.url)
        if path is None:
            return _problem(404, "no such operation")
        if path == OPENAPI_PATH:
            if request.method not in ("GET", "HEAD"):
                return _problem(405, "GET only", headers=(("Allow", "GET, HEAD"),))
            return messages.Response(200, (messages.JSON, *_HEADERS), self.openapi())
        found = [(op, match) for op in OPERATIONS if (match := op.pattern.match(path))]
        if not found:
            return _problem(404, "no such operation")
        chosen = next(((op, m) for op, m in found if op.method == request.method), None)
        if chosen is None:
            allowed = ", ".join(sorted({op.method for op, _ in found}))
            return _problem(405, f"{request.method} is not allowed here", headers=(("Allow", allowed),))
        try:
            admin = identify()
        except AdminRefused as refused:
            return _problem(refused.status, refused.detail, headers=refused.headers)
        except StorageError:  # the guard could not check (the bearer guard's first key load)
            return UNAVAILABLE
        if admin is None:
            return _problem(401, "sign in as an admin")
        operation, match = chosen
        what = f"{operation.method} {self.prefix}{operation.path}"
        try:
            call = self._call(operation, match, request, admin)
        except _Refused as refusal:
            return refusal.response
        try:
            answer = operation.run(call)
        except Exception as exc:  # noqa: BLE001 - each refusal its problem; a bug a logged 500
            return _error_response(exc, what)
        if answer is None:
            return messages.Response(204, _HEADERS)
        return messages.Response(operation.status, (messages.JSON, *_HEADERS), answer.model_dump(mode="json"))

    def _call(
        self, operation: Operation, match: re.Match[str], request: messages.Request, admin: Admin
    ) -> Call:
        query_adapter, body_adapter = self._adapters[operation]
        pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query, keep_blank_values=True)
        repeated = sorted({name for name, _ in pairs if sum(1 for n, _ in pairs if n == name) > 1})
        if repeated:
            raise _Refused(
                _problem(
                    422,
                    "a query parameter was repeated",
                    errors=[FieldError(field=n, reason="repeated") for n in repeated],
                )
            )
        try:
            query = query_adapter.validate_python(dict(pairs))
        except ValidationError as error:
            raise _Refused(_validation_problem(error)) from None
        body: Mapping[str, Any] = {}
        if body_adapter is not None:
            body = self._body(body_adapter, request)
        scope = self.auth.admin_scope(admin, source=request.client_address)
        return Call(scope, match.groupdict(), query, body, utcnow(self.auth.clock))

    @staticmethod
    def _body(adapter: TypeAdapter[Any], request: messages.Request) -> Mapping[str, Any]:
        media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise _Refused(
                _problem(
                    415,
                    "send Content-Type: application/json (an empty body is fine when nothing is required)",
                )
            )
        if len(request.body) > MAX_BODY_BYTES:
            raise _Refused(TOO_LARGE)
        raw = request.body if request.body.strip() else b"{}"
        try:
            json.loads(raw)
        except ValueError:
            raise _Refused(_problem(400, "the body is not JSON")) from None
        try:
            value: Mapping[str, Any] = adapter.validate_json(raw, strict=True)
        except ValidationError as error:
            raise _Refused(_validation_problem(error)) from None
        return value

    # ------------------------------------------------------------------ the OpenAPI document

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every operation, built once from :data:`OPERATIONS`."""
        if self._openapi is None:
            self._openapi = _openapi_document(self.prefix, self.security)
        return self._openapi


class _Refused(Exception):
    def __init__(self, response: messages.Response) -> None:
        super().__init__(response.status)
        self.response = response


_REF = "#/components/schemas/{model}"
_PROBLEMS = {
    400: "The body is not JSON",
    401: "No admin signed in",
    403: "Not allowed for this admin",
    404: "Not found (or another tenant's)",
    405: "Method not allowed",
    409: "Conflicts with the stored state",
    413: "Body too large",
    415: "Not application/json",
    422: "A field was refused",
    503: "Storage unavailable; retry",
}


def _openapi_document(prefix: str, security: Mapping[str, Any]) -> dict[str, Any]:
    inputs: list[tuple[Any, Literal["validation", "serialization"], TypeAdapter[Any]]] = [
        ("Problem", "serialization", TypeAdapter(Problem))
    ]
    for op in OPERATIONS:
        inputs.append(((op.name, "query"), "validation", TypeAdapter(op.query)))
        if op.body is not None:
            inputs.append(((op.name, "body"), "validation", TypeAdapter(op.body)))
        if op.answer is not None:
            inputs.append(((op.name, "answer"), "serialization", TypeAdapter(op.answer)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    components: dict[str, Any] = dict(definitions.get("$defs", {}))

    def ref(key: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        return schemas[(key, mode)]

    problem = {"application/problem+json": {"schema": ref("Problem", "serialization")}}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        query = ref((op.name, "query"), "validation")
        query = components.get(query["$ref"].rsplit("/", 1)[1], query) if "$ref" in query else query
        parameters: list[dict[str, Any]] = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
            for p in op.params
        ]
        parameters += [
            {"name": name, "in": "query", "required": name in query.get("required", ()), "schema": schema}
            for name, schema in query.get("properties", {}).items()
        ]
        responses: dict[str, Any] = {}
        if op.answer is None:
            responses[str(op.status)] = {"description": "Done"}
        else:
            responses[str(op.status)] = {
                "description": op.summary,
                "content": {"application/json": {"schema": ref((op.name, "answer"), "serialization")}},
            }
        for status, description in _PROBLEMS.items():
            responses[str(status)] = {"description": description, "content": problem}
        entry: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
        }
        if op.body is not None:
            body_schema = ref((op.name, "body"), "validation")
            # Required even when every field is optional: the JSON media type is what keeps
            # cross-site requests out (an empty body with it is {}).
            required = True
            entry["requestBody"] = {
                "required": required,
                "content": {"application/json": {"schema": body_schema}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    paths[OPENAPI_PATH] = {
        "get": {
            "operationId": "getOpenAPI",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "embedauth management API", "version": __version__},
        "servers": [{"url": prefix}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"admin": dict(security)}},
        "security": [{"admin": []}],
    }
