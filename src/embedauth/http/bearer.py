"""Bearer-token checks for protected APIs (RFC 6750), free of any web framework.

The Starlette and Flask adapters call :meth:`BearerGuard.authenticate` with the request's
``Authorization`` header and :meth:`BearerGuard.authorize` with the scopes a route needs; a
:class:`BearerError` renders itself as the RFC 6750 §3 response, so both frameworks send the same
status, ``WWW-Authenticate`` challenge and JSON body.

* No ``Authorization`` header, or one of another scheme (``Basic …`` is the token endpoint's): no
  bearer credentials, so anonymous (``None``); a route that needs a caller answers 401 with a bare
  challenge, ``Bearer realm="…"`` (§3.1: no error code when no credentials were sent).
* A ``Bearer`` header (the scheme is case-insensitive, RFC 7235 §2.1) with no token, or with more
  than one: 400 ``invalid_request``.
* A token that does not verify, for any reason, a malformed one included (§3.1 lists "malformed"
  under ``invalid_token``): 401 ``invalid_token``, one description, no oracle. The token's
  characters are checked by the verifier on a cache miss, not here on every request.
* A valid token without a needed scope: 403 ``insufficient_scope`` with the ``scope`` needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from embedauth.errors import InvalidToken
from embedauth.http.messages import JSON, Response, quoted
from embedauth.lru import BoundedDict
from embedauth.models import Principal

__all__ = ["BearerError", "BearerGuard", "TokenVerifier"]


class TokenVerifier(Protocol):
    """Anything that turns an access token into a :class:`Principal` or raises ``InvalidToken``."""

    def verify(self, token: str) -> Principal:
        """The caller behind ``token``, or :class:`~embedauth.errors.InvalidToken`."""
        ...


class BearerError(Exception):
    """A refusal of a protected request, rendered by :meth:`response`."""

    def __init__(
        self, status: int, error: str | None, description: str | None = None, scope: str | None = None
    ) -> None:
        super().__init__(error or "unauthorized")
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope

    def response(self, realm: str) -> Response:
        """RFC 6750 §3: the challenge, and the same facts as a JSON body."""
        params = [("realm", realm)]
        body: dict[str, str] = {}
        if self.error is not None:
            params.append(("error", self.error))
            body["error"] = self.error
        if self.description is not None:
            params.append(("error_description", self.description))
            body["error_description"] = self.description
        if self.scope is not None:
            params.append(("scope", self.scope))
            body["scope"] = self.scope
        challenge = "Bearer " + ", ".join(f'{name}="{quoted(value)}"' for name, value in params)
        if not body:
            body = {"error": "unauthorized", "error_description": "a bearer token is required"}
        return Response(
            self.status, (JSON, ("WWW-Authenticate", challenge), ("Cache-Control", "no-store")), body
        )


#: How many distinct refusals a guard keeps rendered (they differ only by the scopes routes need).
_MAX_RENDERED = 256
#: How many ``Authorization`` headers a guard keeps read (the token each holds).
_MAX_READ = 4096


class BearerGuard:
    """Checks the ``Authorization`` header of a protected request and the scopes a route needs.

    The hot path (a valid token the verifier has cached) costs a lookup of the header among those
    read before, the verifier's call and a set comparison: readiness is remembered once reached,
    and refusals are rendered once per kind (:meth:`refusal`). The verifier's ``verify`` is looked up per call, so that it can be
    replaced (tests stub it).
    """

    def __init__(self, verifier: TokenVerifier, *, realm: str) -> None:
        self.verifier = verifier
        self.realm = realm
        self._ready = False
        self._prepared = False
        self._rendered: BoundedDict[tuple[str, int, str | None, str | None, str | None], Response] = (
            BoundedDict(_MAX_RENDERED)
        )
        # Headers whose token verified -> that token, the same string object every time: the
        # verifier's cache then finds it without hashing or comparing its characters again, and
        # the header is not split and scanned again (a token is ~600 characters: each pass over it
        # costs). Every use still goes through the verifier (expiry, revocation, key).
        self._read: BoundedDict[str, str] = BoundedDict(_MAX_READ)

    @property
    def ready(self) -> bool:
        """Whether the verifier has loaded what it needs, so that :meth:`authenticate` does no I/O.

        A verifier with a ``ready`` attribute says so itself; one with only ``prepare`` (an
        :class:`~embedauth.EmbedAuth`) is ready once :meth:`prepare` has run; one with neither
        always is. Readiness only ever goes from False to True, so it is remembered once reached.
        """
        if self._ready:
            return True
        ready = getattr(self.verifier, "ready", None)
        if ready is None:
            ready = self._prepared or getattr(self.verifier, "prepare", None) is None
        self._ready = bool(ready)
        return self._ready

    def prepare(self) -> None:
        """Let the verifier load what it needs: blocking I/O, for a worker thread (``StorageError``)."""
        prepare = getattr(self.verifier, "prepare", None)
        if prepare is not None:
            prepare()
        self._prepared = True

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller, or None when the request carries no bearer credentials."""
        if authorization is None:
            return None
        token = self._read.get(authorization)
        if token is not None:
            return self._verify(token)
        scheme, _, credentials = authorization.partition(" ")
        if scheme != "Bearer" and scheme.lower() != "bearer":
            return None
        token = credentials.strip(" ")
        if not token or " " in token or "\t" in token:
            raise BearerError(400, "invalid_request", "the Authorization header must be: Bearer <token>")
        principal = self._verify(token)
        self._read.put(authorization, token)  # only tokens that verified: no stranger fills it
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            return self.verifier.verify(token)
        except InvalidToken:
            raise BearerError(
                401, "invalid_token", "the access token is invalid, expired or revoked"
            ) from None

    def authorize(self, principal: Principal | None, scopes: Iterable[str] = ()) -> Principal:
        """``principal`` if present and holding every scope in ``scopes``; else the RFC 6750 refusal."""
        if principal is None:
            raise BearerError(401, None)
        needed = scopes if type(scopes) is tuple else tuple(scopes)
        if not principal.scopes.issuperset(needed):
            raise BearerError(
                403, "insufficient_scope", "the access token lacks a scope this needs", " ".join(needed)
            )
        return principal

    def check(self, authorization: str | None, scopes: Iterable[str] = ()) -> Principal:
        """:meth:`authenticate`, then :meth:`authorize`."""
        return self.authorize(self.authenticate(authorization), scopes)

    def refusal(self, error: BearerError) -> Response:
        """``error.response(self.realm)``, rendered once per kind of refusal and then reused."""
        key = (self.realm, error.status, error.error, error.description, error.scope)
        response = self._rendered.get(key)
        if response is None:
            response = error.response(self.realm)
            self._rendered.put(key, response)
        return response
