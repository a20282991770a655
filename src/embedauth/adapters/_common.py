"""What both adapters share, so that each only translates between its framework and :mod:`embedauth.http`.

* :func:`oauth_routes`: the one table of OAuth endpoint paths, names and handlers;
* :class:`BodyLimit`: a form body read up to :data:`~embedauth.http.messages.MAX_FORM_BYTES`, never past it;
* :func:`answer`: a read body in, the endpoint's response out (form parsed, storage failures a 503);
* :func:`unavailable`: the one "storage is down" answer, logged once;
* :class:`ExemptPaths`: the paths a bearer check does not look at;
* :class:`AdminSurface`: the management API and the admin page, as both adapters mount them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

from embedauth.errors import OAuthError, StorageError
from embedauth.http import messages
from embedauth.http.admin_page import AdminPage, SignIn
from embedauth.http.health import HEALTH_PATH, Health
from embedauth.http.management import BearerAdmins, ManagementAPI
from embedauth.http.oauth import INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH, OAuthEndpoints
from embedauth.registry.admin import Admin

if TYPE_CHECKING:
    from embedauth.core import EmbedAuth

__all__ = [
    "AdminSurface",
    "BodyLimit",
    "BodyTooLarge",
    "ExemptPaths",
    "OAuthRoute",
    "answer",
    "oauth_routes",
    "unavailable",
]

log = logging.getLogger("embedauth.adapters")


@dataclass(frozen=True, slots=True)
class OAuthRoute:
    """One OAuth endpoint: where it is mounted, its route name, whether it reads a form, and
    whether an async adapter may first try it on the event loop (see :func:`answer`)."""

    path: str
    name: str
    handle: Callable[[messages.Request], messages.Response]
    reads_form: bool
    on_loop: Callable[[], bool] | None = None


#: The hooks a token request may call; an implementation outside embedauth might block.
_TOKEN_PATH_HOOKS = ("embedauth_token_issued", "embedauth_extra_claims", "embedauth_token_denied")


def _own_hooks_only(plugins: pluggy.PluginManager) -> Callable[[], bool]:
    """Whether every implementation of the token path's hooks is one of embedauth's plugins (which
    never block), checked per request: a plugin registered later counts at once."""
    callers = [getattr(plugins.hook, name) for name in _TOKEN_PATH_HOOKS]

    def check() -> bool:
        return all(
            impl.plugin_name.startswith("embedauth.") for caller in callers for impl in caller.get_hookimpls()
        )

    return check


def oauth_routes(auth: EmbedAuth, prefix: str) -> list[OAuthRoute]:
    """The endpoints' routes: the metadata documents at the root (RFC 8414 §3), the rest under ``prefix``.

    With a prefix the JWKS is also served at the root, where clients that guess it look.
    ``/healthz`` is at the root. An issuer with a path (``https://host/auth``) also has its metadata
    where RFC 8414 §3.1 puts it, the well-known segment between the host and the path
    (``/.well-known/oauth-authorization-server/auth``, and the same for ``openid-configuration``),
    and the OpenID configuration where OpenID Connect Discovery §4 looks
    (``/auth/.well-known/openid-configuration``).
    """
    from urllib.parse import urlsplit  # here, so that this change stays within the route table

    metadata, openid = "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"
    endpoints = OAuthEndpoints(auth)
    routes = [
        OAuthRoute(prefix + TOKEN_PATH, "token", endpoints.token, True, _own_hooks_only(auth.plugins)),
        OAuthRoute(prefix + REVOKE_PATH, "revoke", endpoints.revoke, True),
        OAuthRoute(prefix + INTROSPECT_PATH, "introspect", endpoints.introspect, True),
        OAuthRoute(metadata, "metadata", endpoints.metadata, False),
        OAuthRoute(openid, "openid-configuration", endpoints.metadata, False),
        OAuthRoute(prefix + JWKS_PATH, "jwks", endpoints.jwks, False),
    ]
    issuer_path = urlsplit(auth.settings.issuer).path.rstrip("/")
    if issuer_path:
        routes += [
            OAuthRoute(metadata + issuer_path, "issuer-metadata", endpoints.metadata, False),
            OAuthRoute(
                openid + issuer_path,
                "issuer-openid-configuration",
                endpoints.metadata,
                False,
            ),
            OAuthRoute(
                issuer_path + openid,
                "issuer-path-openid-configuration",
                endpoints.metadata,
                False,
            ),
        ]
    if prefix:
        routes.append(OAuthRoute(JWKS_PATH, "root-jwks", endpoints.jwks, False))
    routes.append(OAuthRoute(HEALTH_PATH, "health", Health(auth).check, False))
    return routes


class BodyTooLarge(Exception):
    """A body over its limit (declared, or counted as it arrived); refused without reading on."""


class BodyLimit:
    """Collects a request body, refusing it (:class:`BodyTooLarge`) as soon as it passes ``limit``.

    A larger declared ``Content-Length`` is refused before anything is read; a streamed body is
    counted as it arrives. The OAuth endpoints read at most
    :data:`~embedauth.http.messages.MAX_FORM_BYTES`, the management API
    :data:`~embedauth.http.management.MAX_BODY_BYTES`.
    """

    def __init__(self, declared_length: int | None, limit: int = messages.MAX_FORM_BYTES) -> None:
        if declared_length is not None and declared_length > limit:
            raise BodyTooLarge
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def remaining(self) -> int:
        """How many more bytes may arrive before the body is refused (one more than the limit allows)."""
        return self.limit + 1 - self._size

    def add(self, chunk: bytes) -> None:
        """Append ``chunk``; :class:`BodyTooLarge` once the body is over the limit."""
        self._size += len(chunk)
        if self._size > self.limit:
            raise BodyTooLarge
        self._chunks.append(chunk)

    def body(self) -> bytes:
        """Everything collected."""
        return b"".join(self._chunks)


def declared_length(value: str | None) -> int | None:
    """A ``Content-Length`` header's value as a number, or None when absent or not a number."""
    return int(value) if value is not None and value.isdigit() else None


def answer(
    route: OAuthRoute,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    path: str,
    client_address: str | None,
) -> messages.Response:
    """The endpoint's response to a request whose body has been read (``None``: not read).

    Runs in the adapter's worker thread: the endpoint may touch storage and spend argon2 time. A
    form the parser refuses is the RFC 6749 error; :class:`~embedauth.errors.StorageError` is
    :func:`unavailable`. An async adapter may first call it on the event loop within
    :func:`embedauth.blocking.nonblocking`, for a route whose ``on_loop()`` says so: it then
    answers from memory (a token for a client that authenticated before) or raises
    :class:`~embedauth.blocking.WouldBlock` before anything that lasts, and the adapter calls it
    again in a worker thread.
    """
    form: Sequence[tuple[str, str]] = ()
    if route.reads_form and method == "POST":
        try:
            form = messages.parse_form(body or b"", headers.get("content-type"))
        except OAuthError as error:
            return messages.error_response(error)
    request = messages.Request(
        method=method, url=url, headers=headers, form=form, client_address=client_address
    )
    try:
        return route.handle(request)
    except StorageError:
        return unavailable(f"{method} {path}")


def unavailable(what: str) -> messages.Response:
    """Log that storage failed while serving ``what`` (a method and path, never a query), and answer 503.

    During an outage every request fails the same way: the traceback is logged at most once every
    :data:`_LOG_EVERY` seconds, the rest as a count.
    """
    global _last_logged, _unlogged
    now = time.monotonic()
    if now - _last_logged >= _LOG_EVERY:
        suffix = f" (and {_unlogged} more since the last report)" if _unlogged else ""
        log.warning("embedauth: storage unavailable for %s%s", what, suffix, exc_info=True)
        _last_logged, _unlogged = now, 0
    else:
        _unlogged += 1
    return messages.UNAVAILABLE


_LOG_EVERY = 10.0
_last_logged = -_LOG_EVERY
_unlogged = 0


class ExemptPaths:
    """Paths a bearer check does not look at: an exact path, or every path under one ending with ``/``."""

    def __init__(self, exempt: Sequence[str]) -> None:
        self._paths = frozenset(path for path in exempt if not path.endswith("/"))
        self._prefixes = tuple(path for path in exempt if path.endswith("/"))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self._paths or path.startswith(self._prefixes))


class AdminSurface:
    """The management API (under ``admin_api_prefix``) and the admin page (under
    ``admin_page_path``, when set) of ``auth``; :attr:`bearer` is the default admin guard's check.

    ``sign_in`` and ``sign_in_url`` tell the page how people sign in (see
    :class:`~embedauth.http.admin_page.AdminPage`).
    """

    def __init__(
        self, auth: EmbedAuth, *, sign_in: SignIn = "client_credentials", sign_in_url: str | None = None
    ) -> None:
        settings = auth.settings
        self.api = ManagementAPI(auth)
        self.page = (
            AdminPage(settings, sign_in=sign_in, sign_in_url=sign_in_url)
            if settings.admin_page_path
            else None
        )
        self.bearer = BearerAdmins(auth, realm=settings.issuer)

    def bearer_admin(self, authorization: str | None) -> Admin:
        """The built-in guard: the admin behind a bearer token (see :class:`BearerAdmins`)."""
        return self.bearer.admin(authorization)

    def answer_api(
        self,
        *,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        identify: Callable[[], Admin | None],
    ) -> messages.Response:
        """The management API's answer; runs in the adapter's worker thread (storage, argon2)."""
        request = messages.Request(method=method, url=url, headers=headers, body=body)
        return self.api.handle(request, identify)
