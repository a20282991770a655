"""The OAuth endpoints, free of any web framework: a :class:`Request` value in, a :class:`Response` out.

The Starlette and Flask adapters only translate: they read the method, URL, lower-cased headers and
form (:func:`~embedauth.http.messages.parse_form`) into a :class:`~embedauth.http.messages.Request`,
call one :class:`OAuthEndpoints` method, and write ``status``, ``headers`` and
:meth:`~embedauth.http.messages.Response.content` back. Both frameworks therefore answer
byte for byte the same, and the logic is tested here without either.

=================================  ==========================================================
``POST /oauth/token``              :meth:`OAuthEndpoints.token` (RFC 6749 §4.4, §6; RFC 7523 §2.2)
``POST /oauth/revoke``             :meth:`OAuthEndpoints.revoke` (RFC 7009)
``POST /oauth/introspect``         :meth:`OAuthEndpoints.introspect` (RFC 7662)
``GET /.well-known/…``             :meth:`OAuthEndpoints.metadata` (RFC 8414; also served as the
                                   OpenID ``openid-configuration`` document)
``GET /.well-known/jwks.json``     :meth:`OAuthEndpoints.jwks` (RFC 7517)
=================================  ==========================================================

Decisions, each with its reason:

* **Headers.** Every token, revocation and introspection response, success or error, carries
  ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 §5.1). A response with a JSON body
  carries ``Content-Type: application/json`` here, so the adapters never choose it; the revocation
  success has no body (RFC 7009 §2.2) and so no ``Content-Type``. Metadata and JWKS are cacheable
  (``public, max-age=300``; the JWKS age is also capped by ``key_publish_ahead`` so that a cached set
  always holds the next key before it signs).
* **Parameters.** A parameter sent with an empty value is treated as omitted (RFC 6749 §3.1), then
  any parameter that is still repeated is ``invalid_request`` naming it (§3.2). Parameters in the
  URL's query string are never read: credentials belong in the body (§2.3.1).
* **Client authentication** (RFC 6749 §2.3.1, RFC 7523 §2.2): ``client_secret_basic``,
  ``client_secret_post`` or ``private_key_jwt``, exactly one. Which one a request uses is read here;
  checking it is :mod:`embedauth.credentials.client_auth`'s job. Two at once is ``invalid_request``. A
  ``client_id`` in the form next to HTTP Basic is tolerated when it names the same client (some
  client libraries send both), and is ``invalid_request`` otherwise. Any other scheme in the
  ``Authorization`` header is an authentication attempt that fails: ``invalid_client``.
* **401 and the challenge.** ``invalid_client`` is always 401. ``WWW-Authenticate: Basic realm="<issuer>"``
  is added when the client tried the ``Authorization`` header (RFC 6749 §5.2 MUST) and also when it
  sent no credentials at all, the ordinary HTTP answer to a request that needs authentication and
  the hint that Basic is what to try. A failed ``client_secret_post`` or ``private_key_jwt`` gets a
  401 without a challenge: the client did not use HTTP authentication.
* **No oracle.** An unknown client and a wrong secret give identical bytes (the core spends the
  same argon2 work on both). Descriptions never echo a secret, a token, or free-form input; a
  repeated parameter's name is echoed only when it is a plain token.
* **Refresh tokens** here are a person's API tokens, not bound to any registration. A
  ``refresh_token`` request that also carries client credentials is refused (``invalid_request``)
  instead of silently ignoring them: RFC 6749 §6 would have the server check the token is bound to
  that client, and a client that authenticates would otherwise believe a check happened that did
  not (and a wrong secret would go unnoticed). A bare ``client_id`` (what public-client libraries
  send) is tolerated and ignored.
* **Revocation** (RFC 7009): client authentication is optional, possession of the token is enough
  (revoking only ever takes rights away). Credentials that are sent must be valid; the token must
  then belong to that client (``unauthorized_client`` otherwise). ``token_type_hint`` is ignored,
  whatever its value (§2.1 lets the server search every type), so ``unsupported_token_type`` never
  occurs. An unknown or invalid token is a 200 (§2.2).
* **Introspection** (RFC 7662 §2.1): client authentication is required. Tenants are isolated: a
  client sees ``{"active": false}`` for any token whose ``tenant`` is not its own, including
  tokens from a person's refresh token created without a tenant; otherwise a client of one tenant
  could learn the subjects and scopes of another's tokens.
* **Errors.** Every :class:`~embedauth.errors.OAuthError` becomes its status and body;
  ``InvalidInput`` becomes ``invalid_request`` with a fixed description (its message may quote
  the input). :class:`~embedauth.errors.StorageError` is the one exception that escapes a handler:
  the adapters answer it with 503 (and a ``Retry-After``), since the request may succeed later.
  Anything else is a bug: it is logged and answered with a 500 ``server_error`` body that is the
  same in both frameworks.
* ``HEAD`` on metadata and JWKS returns the GET response, body included, so the adapters (and
  servers, which drop HEAD bodies) can send the GET's ``Content-Length``.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from embedauth.blocking import WouldBlock
from embedauth.credentials.client_auth import (
    ASSERTION_ALGORITHMS,
    ASSERTION_TYPE,
    Credential,
    Presented,
    PresentedAssertion,
    PresentedSecret,
)
from embedauth.errors import (
    InvalidClient,
    InvalidInput,
    InvalidRequest,
    OAuthError,
    StorageError,
    UnsupportedGrantType,
)
from embedauth.http.messages import (
    JSON,
    NO_STORE,
    Request,
    Response,
    error_response,
    parse_basic_authorization,
    quoted,
)
from embedauth.models import Registration

if TYPE_CHECKING:
    from embedauth.core import EmbedAuth

__all__ = [
    "INTROSPECT_PATH",
    "JWKS_PATH",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "OAuthEndpoints",
]

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"

GRANT_TYPES = ("client_credentials", "refresh_token")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
#: The order clients usually list them in; the same set as ``ASSERTION_ALGORITHMS``.
AUTH_SIGNING_ALGORITHMS = tuple(
    alg for alg in ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA") if alg in ASSERTION_ALGORITHMS
)
METADATA_MAX_AGE = 300

#: Form parameters that are client credentials (``client_id`` alone is not one).
_CREDENTIAL_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
#: A parameter name that is safe to quote back in an error description (RFC 6749 §5.2 charset).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


# ---------------------------------------------------------------------------- reading parameters


def _parameters(form: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Blank values dropped (RFC 6749 §3.1), then any repeat refused (§3.2)."""
    params: dict[str, str] = {}
    for name, value in form:
        if value == "":
            continue
        if name in params:
            what = f"the parameter {name} is" if _SAFE_NAME.fullmatch(name) else "a parameter is"
            raise InvalidRequest(f"{what} repeated")
        params[name] = value
    return params


def _credentials(request: Request, params: Mapping[str, str]) -> Presented | None:
    """The client credentials the request carries, checked for shape only; None when there are none."""
    authorization = request.headers.get("authorization")
    form_id = params.get("client_id")
    secret = params.get("client_secret")
    assertion, assertion_type = params.get("client_assertion"), params.get("client_assertion_type")
    uses_assertion = assertion is not None or assertion_type is not None
    if (authorization is not None) + (secret is not None) + uses_assertion > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if authorization is not None:
        client_id, client_secret = parse_basic_authorization(authorization)
        if form_id is not None and form_id != client_id:
            raise InvalidRequest(
                "the client_id parameter differs from the client in the Authorization header"
            )
        return PresentedSecret(client_id, client_secret)
    if uses_assertion:
        if assertion_type != ASSERTION_TYPE:
            raise InvalidRequest(f"client_assertion_type must be {ASSERTION_TYPE}")
        if assertion is None:
            raise InvalidRequest("client_assertion is missing")
        return PresentedAssertion(assertion, form_id)
    if secret is not None:
        if form_id is None:
            raise InvalidRequest("client_secret needs client_id")
        return PresentedSecret(form_id, secret)
    return None


def _sends_credentials(request: Request, params: Mapping[str, str]) -> bool:
    return "authorization" in request.headers or not _CREDENTIAL_PARAMS.isdisjoint(params)


def _challenged(request: Request) -> bool:
    """RFC 6749 §5.2: challenge when the client tried the Authorization header, or sent nothing."""
    if "authorization" in request.headers:
        return True
    return not any(value and name in _CREDENTIAL_PARAMS for name, value in request.form)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise InvalidRequest(f"{name} is missing")
    return value


# ---------------------------------------------------------------------------- the endpoints


class OAuthEndpoints:
    """The token, revocation, introspection, metadata and JWKS endpoints of one :class:`EmbedAuth`.

    Each method takes a :class:`Request` and returns a :class:`Response`; none raises except
    :class:`~embedauth.errors.StorageError`, which an adapter answers with 503, and, inside
    :func:`embedauth.blocking.nonblocking`, :class:`~embedauth.blocking.WouldBlock`.
    """

    def __init__(self, auth: EmbedAuth) -> None:
        self._auth = auth
        self._challenge = ("WWW-Authenticate", f'Basic realm="{quoted(auth.settings.issuer)}"')

    # ------------------------------------------------------------------ POST endpoints

    def token(self, request: Request) -> Response:
        """``POST /oauth/token``: ``client_credentials`` (RFC 6749 §4.4) or ``refresh_token`` (§6)."""
        return self._post(request, self._token)

    def revoke(self, request: Request) -> Response:
        """``POST /oauth/revoke`` (RFC 7009): 200 with no body, whether or not the token was known."""
        return self._post(request, self._revoke)

    def introspect(self, request: Request) -> Response:
        """``POST /oauth/introspect`` (RFC 7662), for an authenticated client of the token's tenant."""
        return self._post(request, self._introspect)

    def _token(self, request: Request, params: Mapping[str, str]) -> Response:
        grant_type = _required(params, "grant_type")
        if grant_type == "client_credentials":
            issued = self._auth.tokens.grant(
                _credentials(request, params), params.get("scope"), address=request.client_address
            )
        elif grant_type == "refresh_token":
            if _sends_credentials(request, params):
                raise InvalidRequest(
                    "refresh tokens here are not bound to a client: send no client credentials"
                )
            refresh_token = _required(params, "refresh_token")
            issued = self._auth.tokens.refresh(
                refresh_token, scope=params.get("scope"), address=request.client_address
            )
        else:
            raise UnsupportedGrantType(f"the grant types supported are {' and '.join(GRANT_TYPES)}")
        return self._json(200, issued.to_json(), NO_STORE)

    def _revoke(self, request: Request, params: Mapping[str, str]) -> Response:
        token = _required(params, "token")
        client = self._client(request, params)
        client_id = None if client is None else client[0].client_id
        self._auth.tokens.revoke(token, client_id=client_id, address=request.client_address)
        return Response(200, NO_STORE, None)

    def _introspect(self, request: Request, params: Mapping[str, str]) -> Response:
        token = _required(params, "token")
        registration, _ = self._authenticate(request, params)
        answer = dict(self._auth.tokens.introspect(token))
        if answer.get("active") is True and answer.get("tenant") != registration.tenant:
            answer = {"active": False}
        return self._json(200, answer, NO_STORE)

    def _authenticate(self, request: Request, params: Mapping[str, str]) -> tuple[Registration, Credential]:
        """The authenticated, usable registration; ``InvalidClient`` when there are no credentials."""
        client = self._client(request, params)
        if client is None:
            raise InvalidClient("client authentication is required")
        return client

    def _client(self, request: Request, params: Mapping[str, str]) -> tuple[Registration, Credential] | None:
        """The authenticated, usable registration, or None when the request carries no credentials."""
        presented = _credentials(request, params)
        if presented is None:
            return None
        return self._auth.clients.authenticate(presented, address=request.client_address)

    def _post(self, request: Request, handle: Callable[[Request, Mapping[str, str]], Response]) -> Response:
        if request.method != "POST":
            return self._not_allowed("POST", NO_STORE)
        return self._guarded(request, lambda: handle(request, _parameters(request.form)))

    # ------------------------------------------------------------------ GET endpoints

    def metadata(self, request: Request) -> Response:
        """RFC 8414 §2 metadata, also served as ``/.well-known/openid-configuration``."""
        if request.method not in {"GET", "HEAD"}:
            return self._not_allowed("GET, HEAD", (("Cache-Control", "no-store"),))
        return self._guarded(request, self._metadata)

    def _metadata(self) -> Response:
        settings = self._auth.settings
        body: dict[str, Any] = {
            "issuer": settings.issuer,
            "token_endpoint": settings.endpoint(TOKEN_PATH),
            "revocation_endpoint": settings.endpoint(REVOKE_PATH),
            "introspection_endpoint": settings.endpoint(INTROSPECT_PATH),
            "jwks_uri": settings.endpoint(JWKS_PATH),
            "grant_types_supported": list(GRANT_TYPES),
            # RFC 8414 requires it; there is no authorization endpoint, so no response type.
            "response_types_supported": [],
            "scopes_supported": [permission.name for permission in self._auth.permissions.list()],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(AUTH_SIGNING_ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_signing_alg_values_supported": list(AUTH_SIGNING_ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_signing_alg_values_supported": list(AUTH_SIGNING_ALGORITHMS),
            # OpenID discovery clients (Node's openid-client) read these from openid-configuration.
            # No ID token is ever issued; OpenID Connect Discovery 1.0 §3 requires RS256 listed.
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return self._json(200, body, (("Cache-Control", f"public, max-age={METADATA_MAX_AGE}"),))

    def jwks(self, request: Request) -> Response:
        """The public keys (RFC 7517 §5), as ``application/json`` for the widest client support."""
        if request.method not in {"GET", "HEAD"}:
            return self._not_allowed("GET, HEAD", (("Cache-Control", "no-store"),))
        return self._guarded(request, self._jwks)

    def _jwks(self) -> Response:
        max_age = max(0, min(METADATA_MAX_AGE, self._auth.settings.key_publish_ahead))
        return self._json(200, self._auth.jwks(), (("Cache-Control", f"public, max-age={max_age}"),))

    # ------------------------------------------------------------------ responses

    def _guarded(self, request: Request, handle: Callable[[], Response]) -> Response:
        """Errors to responses; only ``StorageError`` escapes."""
        try:
            return handle()
        except InvalidClient as error:
            extra = (self._challenge,) if _challenged(request) else ()
            return self._json(error.status, error.body(), (*NO_STORE, *error.headers(), *extra))
        except OAuthError as error:
            return error_response(error)
        except InvalidInput:
            # The message may quote the input (a secret, a token): say nothing specific.
            return self._json(400, InvalidRequest("the request is malformed").body(), NO_STORE)
        except (StorageError, WouldBlock):
            raise
        except Exception:  # a bug: logged, and answered the same way in every framework
            log.exception("embedauth: %s %s failed", request.method, _path(request.url))
            body = {"error": "server_error", "error_description": "the server could not handle the request"}
            return self._json(500, body, NO_STORE)

    @staticmethod
    def _json(status: int, body: Mapping[str, Any], headers: tuple[tuple[str, str], ...]) -> Response:
        return Response(status, (JSON, *headers), body)

    def _not_allowed(self, allow: str, cache: tuple[tuple[str, str], ...]) -> Response:
        body = {"error": "invalid_request", "error_description": f"allowed methods: {allow}"}
        return self._json(405, body, (*cache, ("Allow", allow)))


def _path(url: str) -> str:
    """The URL's path only, for a log line: the query string could hold anything."""
    try:
        return urllib.parse.urlsplit(url).path[:200]
    except ValueError:
        return "?"
