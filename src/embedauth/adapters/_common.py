"""What both adapters share, so that each only translates between its framework and :mod:`embedauth.http`.

* :func:`oauth_routes`: the one table of OAuth endpoint paths, names and handlers;
* :class:`BodyLimit`: a form body read up to :data:`~embedauth.http.messages.MAX_FORM_BYTES`, never past it;
* :func:`answer`: a read body in, the endpoint's response out (form parsed, storage failures a 503);
* :func:`unavailable`: the one "storage is down" answer, logged once;
* :class:`ExemptPaths`: the paths a bearer check does not look at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from embedauth.errors import OAuthError, StorageError
from embedauth.http import messages
from embedauth.http.health import HEALTH_PATH, Health
from embedauth.http.oauth import INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH, OAuthEndpoints

if TYPE_CHECKING:
    from embedauth.core import EmbedAuth

__all__ = ["BodyLimit", "ExemptPaths", "OAuthRoute", "answer", "oauth_routes", "unavailable"]

log = logging.getLogger("embedauth.adapters")


@dataclass(frozen=True, slots=True)
class OAuthRoute:
    """One OAuth endpoint: where it is mounted, its route name, and whether it reads a form."""

    path: str
    name: str
    handle: Callable[[messages.Request], messages.Response]
    reads_form: bool


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
        OAuthRoute(prefix + TOKEN_PATH, "token", endpoints.token, True),
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


class BodyLimit:
    """Collects a request body, refusing it (``InvalidRequest``) as soon as it passes the form limit.

    A larger declared ``Content-Length`` is refused before anything is read; a streamed body is
    counted as it arrives.
    """

    def __init__(self, declared_length: int | None) -> None:
        if declared_length is not None and declared_length > messages.MAX_FORM_BYTES:
            raise messages.body_too_large()
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def remaining(self) -> int:
        """How many more bytes may arrive before the body is refused (one more than the limit allows)."""
        return messages.MAX_FORM_BYTES + 1 - self._size

    def add(self, chunk: bytes) -> None:
        """Append ``chunk``; ``InvalidRequest`` once the body is over the limit."""
        self._size += len(chunk)
        if self._size > messages.MAX_FORM_BYTES:
            raise messages.body_too_large()
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
    :func:`unavailable`.
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
