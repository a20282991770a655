"""Starlette and FastAPI: the OAuth routes, a pure ASGI bearer middleware, and a FastAPI dependency.

Serving the endpoints::

    app = Starlette(routes=[...])
    mount_oauth(app, auth)        # POST /oauth/token, /oauth/revoke, /oauth/introspect, GET /.well-known/…
    mount_admin(app, auth, guard=my_admin_guard)   # /admin/api/… and the page at /admin/

Protecting an API (the model is Starlette's own ``AuthenticationMiddleware``: one call to the guard,
the same objects in ``scope["auth"]`` and ``scope["user"]``, so ``@requires("devices:read")`` and
``request.user`` work as usual)::

    app.add_middleware(BearerMiddleware, verifier=auth, realm="api", exempt=["/oauth/", "/.well-known/"])

    @requires_scopes("devices:read")          # RFC 6750 401/403 with the challenge
    async def devices(request: Request) -> Response:
        principal = request.user.principal

With FastAPI, a security dependency that also declares the bearer scheme in OpenAPI::

    bearer = BearerPrincipal(auth, realm="api")
    install_bearer_errors(app)                # its refusals then match the middleware's, byte for byte

    @app.get("/devices")
    def devices(principal: Principal = Security(bearer, scopes=["devices:read"])) -> ...

Decisions:

* **The OAuth routes are ASGI apps, not request functions**, so a route takes every method and the
  endpoint answers 405 itself, with the same JSON body and ``Allow`` header as under Flask.
  They read the form (at most :data:`~embedauth.http.messages.MAX_FORM_BYTES`: a larger declared
  ``Content-Length`` is refused unread, and a streamed body is counted as it arrives), then run the
  endpoint in the thread pool: it touches storage and may spend argon2 time.
  :class:`~embedauth.errors.StorageError` becomes 503 with ``Retry-After``.
* **Responses are written as raw ASGI messages**: header names lower-cased, in the endpoint's order,
  ``content-length`` last; a ``HEAD`` gets the ``GET`` headers and no body. Nothing is added.
* **The middleware verifies inline**: verification is I/O-free (keys and revocations are in memory),
  a thread hop would cost more than the check. Non-HTTP scopes (lifespan) pass straight through; a
  WebSocket handshake is checked like a request, and refused with close code 1008.
* **Exempt paths are not looked at**: the middleware does not read their ``Authorization`` header
  and marks them anonymous. List the OAuth endpoints there when the middleware wraps them: a
  ``Bearer`` header sent to ``/oauth/token`` is then the endpoint's ``invalid_client``, as under
  Flask, not the middleware's ``invalid_token`` (``Basic`` needs no exemption: another scheme is no
  bearer credentials). An entry matches its exact path, or every path under it when it ends with ``/``.
* **FastAPI refusals.** A dependency cannot return a response, only raise. :class:`BearerRefusal` is
  an ``HTTPException`` carrying the exact RFC 6750 response: with the handler that
  :func:`install_bearer_errors` registers, the bytes are the middleware's; without it, FastAPI's
  default handler still sends the right status, ``WWW-Authenticate`` and ``Cache-Control``, with
  the body wrapped as ``{"detail": {...}}``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ParamSpec

try:  # a missing extra says which to install
    import starlette  # noqa: F401 - only to know it is there
except ModuleNotFoundError as missing:  # pragma: no cover - exercised in a venv without it
    raise ModuleNotFoundError(
        "embedauth.adapters.starlette needs Starlette: pip install 'embedauth[starlette]'", name=missing.name
    ) from missing

import anyio.from_thread
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, URLPath
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from embedauth.adapters import _common
from embedauth.blocking import WouldBlock, nonblocking
from embedauth.core import EmbedAuth
from embedauth.errors import StorageError
from embedauth.http import messages
from embedauth.http.admin_page import AdminPage, SignIn
from embedauth.http.bearer import BearerError, BearerGuard, TokenVerifier
from embedauth.http.management import MAX_BODY_BYTES, TOO_LARGE
from embedauth.lru import BoundedDict
from embedauth.models import Principal
from embedauth.registry.admin import Admin

try:  # FastAPI is optional: BearerPrincipal exists when it is installed.
    from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
    from fastapi.security import SecurityScopes
    from fastapi.security.base import SecurityBase
except ImportError:  # pragma: no cover - exercised only without FastAPI
    HAS_FASTAPI = False
else:
    HAS_FASTAPI = True

__all__ = [
    "GUARD_SCOPE_KEY",
    "AdminGuard",
    "BearerMiddleware",
    "BearerRefusal",
    "PrincipalUser",
    "admin_routes",
    "install_bearer_errors",
    "mount_admin",
    "mount_oauth",
    "oauth_routes",
    "requires_scopes",
]

#: Where :class:`BearerMiddleware` leaves its :class:`~embedauth.http.bearer.BearerGuard` in the scope.
GUARD_SCOPE_KEY = "embedauth.guard"
#: WebSocket close codes (RFC 6455 §7.4.1): policy violation, and try again later.
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013

_P = ParamSpec("_P")


# ---------------------------------------------------------------------------- ASGI plumbing


def _authorization(scope: Scope) -> str | None:
    """The ``Authorization`` header; repeats joined with ``", "`` as WSGI servers do (then refused)."""
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            found = value if found is None else found + b", " + value
    return None if found is None else found.decode("latin-1")


def _headers(scope: Scope) -> dict[str, str]:
    """Every header, names lower-cased, repeats joined with ``", "`` (what a WSGI environ holds)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


#: Response headers as ASGI wants them, by the headers as the endpoints give them: most responses
#: carry one of a few fixed sets (a token response's, a refusal's), so each is encoded once.
_ENCODED: BoundedDict[tuple[tuple[str, str], ...], list[tuple[bytes, bytes]]] = BoundedDict(512)


def _encoded(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    encoded = _ENCODED.get(headers)
    if encoded is None:
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        _ENCODED.put(headers, encoded)
    return encoded


async def _send(response: messages.Response, scope: Scope, send: Send) -> None:
    """``response`` as ASGI messages: exactly its headers (lower-cased) and ``content-length``."""
    body = response.content()
    headers = [*_encoded(response.headers), (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


#: Absolute URLs by what Starlette builds them from: a token endpoint sees the same few all day.
_URLS: BoundedDict[tuple[Any, ...], str] = BoundedDict(512)


def _url(scope: Scope) -> str:
    """``str(URL(scope=scope))``, made once per scheme, (first) ``Host`` header, server, path and query."""
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    key = (scope.get("scheme"), host, scope.get("server"), scope["path"], scope.get("query_string"))
    url = _URLS.get(key)
    if url is None:
        url = str(URL(scope=scope))
        _URLS.put(key, url)
    return url


def _starlette_response(response: messages.Response) -> Response:
    """``response`` as a Starlette :class:`~starlette.responses.Response` (for handlers and decorators)."""
    return Response(response.content(), response.status, headers=dict(response.headers))


# ---------------------------------------------------------------------------- the OAuth routes


class _Endpoint:
    """An ASGI app that answers every method with :meth:`_respond` (which answers 405 itself)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._respond(request)
        except ClientDisconnect:
            return
        await _send(response, scope, send)

    async def _respond(self, request: Request) -> messages.Response:
        raise NotImplementedError


class _OAuthEndpoint:
    """One OAuth endpoint, on the raw ASGI scope (no Starlette ``Request``: this is the token
    endpoint's hot path). It answers every method itself (405 included)."""

    def __init__(self, route: _common.OAuthRoute) -> None:
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, method, headers = self.route, scope["method"], _headers(scope)
        body = None
        if route.reads_form and method == "POST":
            try:
                body = await _body(receive, _common.declared_length(headers.get("content-length")))
            except _common.BodyTooLarge:
                await _send(messages.error_response(messages.body_too_large()), scope, send)
                return
            except ClientDisconnect:
                return
        client = scope.get("client")
        answer = functools.partial(
            _common.answer,
            route,
            method=method,
            url=_url(scope),
            headers=headers,
            body=body,
            path=scope["path"],
            client_address=client[0] if client else None,
        )
        if route.on_loop is not None and route.on_loop():
            try:  # from memory when it can be: no thread, no storage (see embedauth.blocking)
                with nonblocking():
                    response = answer()
            except WouldBlock:
                response = await run_in_threadpool(answer)
        else:
            response = await run_in_threadpool(answer)
        await _send(response, scope, send)


async def _body(receive: Receive, declared: int | None) -> bytes:
    """The request body, refused (:class:`~embedauth.adapters._common.BodyTooLarge`) past the form limit."""
    limit = _common.BodyLimit(declared)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        limit.add(message.get("body", b""))
        if not message.get("more_body", False):
            return limit.body()


def oauth_routes(auth: EmbedAuth, *, prefix: str | None = None) -> list[BaseRoute]:
    """The routes of the OAuth endpoints of ``auth``.

    ``POST {prefix}/oauth/token``, ``{prefix}/oauth/revoke``, ``{prefix}/oauth/introspect`` and
    ``GET {prefix}/.well-known/jwks.json``, the URLs the metadata advertises; the metadata documents
    ``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration`` at the root
    (RFC 8414 §3), and, with a prefix, the JWKS at the root too. ``prefix`` defaults to
    ``auth.settings.endpoint_prefix``: change that setting rather than this argument, or the
    metadata will point elsewhere.
    """
    prefix = (auth.settings.endpoint_prefix if prefix is None else prefix).rstrip("/")
    return [
        Route(route.path, _OAuthEndpoint(route), name=f"embedauth:{route.name}", include_in_schema=False)
        for route in _common.oauth_routes(auth, prefix)
    ]


def mount_oauth(app: Starlette, auth: EmbedAuth, *, prefix: str | None = None) -> None:
    """Append :func:`oauth_routes` to an existing Starlette or FastAPI app."""
    app.router.routes.extend(oauth_routes(auth, prefix=prefix))


# ---------------------------------------------------------------------------- the admin surface

#: An admin guard: the embedding app's check of the caller (its session, its own tokens…), given
#: Starlette's ``Request``; the :class:`~embedauth.registry.admin.Admin`, None (nobody signed in),
#: or :class:`~embedauth.http.management.AdminRefused`. It may be async.
AdminGuard = Callable[[Request], "Admin | Awaitable[Admin | None] | None"]


class _AdminAPI(_Endpoint):
    """The management API under its prefix (the API answers 404 and 405 itself)."""

    def __init__(self, surface: _common.AdminSurface, guard: AdminGuard | None) -> None:
        self.surface = surface
        self.guard = guard

    async def _respond(self, request: Request) -> messages.Response:
        try:
            limit = _common.BodyLimit(
                _common.declared_length(request.headers.get("content-length")), MAX_BODY_BYTES
            )
            async for chunk in request.stream():
                limit.add(chunk)
        except _common.BodyTooLarge:
            return TOO_LARGE
        return await run_in_threadpool(
            self.surface.answer_api,
            method=request.method,
            url=str(request.url),
            headers=_headers(request.scope),
            body=limit.body(),
            identify=functools.partial(self._identify, request),
        )

    def _identify(self, request: Request) -> Admin | None:
        """The guard's answer, asked in the worker thread; an async guard runs on the event loop."""
        if self.guard is None:
            return self.surface.bearer_admin(_authorization(request.scope))
        found = self.guard(request)
        if inspect.isawaitable(found):
            return anyio.from_thread.run(_awaited, found)
        return found


async def _awaited(awaitable: Awaitable[Admin | None]) -> Admin | None:
    return await awaitable


class _AdminPage:
    """The admin page's files (no I/O: answered on the event loop)."""

    def __init__(self, page: AdminPage) -> None:
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send(self.page.handle(scope["method"], scope["path"]), scope, send)


class _Under(BaseRoute):
    """Every path at or under ``prefix``, whatever it holds (Starlette's ``{rest:path}`` stops at a
    newline): the API and the page answer 404 and 405 themselves, in their own formats."""

    def __init__(self, prefix: str, app: ASGIApp, name: str) -> None:
        self.prefix, self.app, self.name = prefix, app, name

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        if name != self.name or path_params:
            raise NoMatchFound(name, path_params)
        return URLPath(self.prefix + "/", protocol="http")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def admin_routes(
    auth: EmbedAuth,
    *,
    guard: AdminGuard | None = None,
    sign_in: SignIn | None = None,
    sign_in_url: str | None = None,
) -> list[BaseRoute]:
    """The management API under ``settings.admin_api_prefix`` and the admin page under
    ``settings.admin_page_path``.

    ``guard`` says who the caller is (see :data:`AdminGuard`); without one, the built-in guard
    accepts bearer tokens holding ``embedauth:admin`` (:class:`~embedauth.http.management.BearerAdmins`),
    and the page signs in with an admin registration's client ID and secret. With your own guard,
    the page expects your app to have signed people in (``sign_in="app"``, linking to
    ``sign_in_url`` when the API answers 401).
    """
    surface = _common.AdminSurface(
        auth,
        sign_in=sign_in or ("client_credentials" if guard is None else "app"),
        sign_in_url=sign_in_url,
    )
    routes: list[BaseRoute] = [_Under(surface.api.prefix, _AdminAPI(surface, guard), "embedauth:admin-api")]
    if surface.page is not None:
        routes.append(_Under(surface.page.path, _AdminPage(surface.page), "embedauth:admin-page"))
    return routes


def mount_admin(
    app: Starlette,
    auth: EmbedAuth,
    *,
    guard: AdminGuard | None = None,
    sign_in: SignIn | None = None,
    sign_in_url: str | None = None,
) -> None:
    """Append :func:`admin_routes` to an existing Starlette or FastAPI app, before its own routes
    (so that a catch-all route of the app cannot shadow them)."""
    app.router.routes[0:0] = admin_routes(auth, guard=guard, sign_in=sign_in, sign_in_url=sign_in_url)


# ---------------------------------------------------------------------------- the bearer middleware


class PrincipalUser(BaseUser):
    """``request.user`` for a verified bearer token; the :class:`~embedauth.models.Principal` is ``.principal``."""

    __slots__ = ("principal",)

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        """Always True: a ``PrincipalUser`` exists only for a verified token."""
        return True

    @property
    def display_name(self) -> str:
        """The token's subject."""
        return self.principal.subject

    @property
    def identity(self) -> str:
        """The token's subject."""
        return self.principal.subject

    def __repr__(self) -> str:
        return f"PrincipalUser({self.principal!r})"


#: How many callers :class:`BearerMiddleware` keeps its ``scope["user"]`` for.
_MAX_CALLERS = 4096


class BearerMiddleware:
    """Pure ASGI middleware that checks the bearer token of every HTTP request and WebSocket handshake.

    Success puts ``AuthCredentials(scopes)`` in ``scope["auth"]`` and a :class:`PrincipalUser` in
    ``scope["user"]``; no bearer credentials give ``AuthCredentials()`` and
    ``UnauthenticatedUser()``, or, when ``required``, the RFC 6750 401. A malformed ``Bearer``
    header or a token that does not verify is refused here (400 or 401). Scopes are checked per route
    (:func:`requires_scopes`, Starlette's ``requires``). Paths in ``exempt`` are not checked.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        realm: str,
        required: bool = False,
        exempt: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.guard = BearerGuard(verifier, realm=realm)
        self.required = required
        exempt = tuple(exempt)
        self.exempt = _common.ExemptPaths(exempt)
        # Whether any path may be exempt (a subclass's own is_exempt is always asked).
        self._exempting = bool(exempt) or type(self).is_exempt is not BearerMiddleware.is_exempt
        # By the identity of the Principal, which the entry keeps alive (so its id is not reused).
        self._callers: dict[int, tuple[Principal, list[str], PrincipalUser]] = {}

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` is one the middleware does not check."""
        return path in self.exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        guard = self.guard
        scope[GUARD_SCOPE_KEY] = guard
        if self._exempting and self.is_exempt(scope["path"]):
            scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
            await self.app(scope, receive, send)
            return
        try:
            if not guard.ready:  # the first request: load keys and revocations off the loop
                await run_in_threadpool(guard.prepare)
            principal = guard.authenticate(_authorization(scope))
            if principal is None and self.required:
                guard.authorize(None)
        except BearerError as error:
            await self._refuse(guard.refusal(error), scope, send, POLICY_VIOLATION)
            return
        except StorageError:  # storage unreachable before the first load, or for too long since
            await self._refuse(_common.unavailable("a bearer check"), scope, send, TRY_AGAIN_LATER)
            return
        if principal is None:
            scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
        else:
            # The verifier hands back the same Principal for a token it has cached: its sorted
            # scopes and its user are made once. AuthCredentials is new each time (its list is
            # the handler's to change).
            callers = self._callers
            known = callers.get(id(principal))
            if known is None or known[0] is not principal:
                if len(callers) >= _MAX_CALLERS:
                    callers.clear()
                known = callers[id(principal)] = (
                    principal,
                    sorted(principal.scopes),
                    PrincipalUser(principal),
                )
            scope["auth"], scope["user"] = AuthCredentials(known[1]), known[2]
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(response: messages.Response, scope: Scope, send: Send, close_code: int) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": close_code})
        else:
            await _send(response, scope, send)


# ---------------------------------------------------------------------------- per-route scopes


def _connection(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> HTTPConnection:
    if args and isinstance(args[0], HTTPConnection):  # a Starlette endpoint: the request comes first
        return args[0]
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError("requires_scopes: the endpoint receives no Request or WebSocket")


def _refusal(conn: HTTPConnection, scopes: tuple[str, ...]) -> messages.Response | None:
    """The RFC 6750 response when the caller lacks ``scopes``, or None when it may proceed."""
    scope = conn.scope
    guard = scope.get(GUARD_SCOPE_KEY)
    if not isinstance(guard, BearerGuard):
        raise RuntimeError("requires_scopes needs BearerMiddleware in front of the endpoint")
    user = scope.get("user")
    try:
        guard.authorize(user.principal if isinstance(user, PrincipalUser) else None, scopes)
    except BearerError as error:
        return guard.refusal(error)
    return None


def requires_scopes(*scopes: str) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Protect a Starlette endpoint (sync or async, HTTP or WebSocket) behind :class:`BearerMiddleware`.

    No caller: 401 with the bare challenge; a caller without every one of ``scopes``: 403
    ``insufficient_scope`` (RFC 6750 §3.1), the same bytes as every other refusal. A WebSocket is
    closed with code 1008 instead.
    """
    needed = tuple(scopes)

    def decorator(endpoint: Callable[_P, Any]) -> Callable[_P, Any]:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                conn = _connection(args, kwargs)
                scope = conn.scope
                user = scope.get("user")
                if (
                    isinstance(user, PrincipalUser)
                    and isinstance(scope.get(GUARD_SCOPE_KEY), BearerGuard)
                    and user.principal.scopes.issuperset(needed)
                ):  # the common case, inline
                    return await endpoint(*args, **kwargs)
                refusal = _refusal(conn, needed)
                if refusal is None:
                    return await endpoint(*args, **kwargs)
                if isinstance(conn, WebSocket):
                    await conn.close(code=POLICY_VIOLATION)
                    return None
                return _starlette_response(refusal)

            return async_wrapper

        @functools.wraps(endpoint)
        def sync_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            refusal = _refusal(_connection(args, kwargs), needed)
            if refusal is None:
                return endpoint(*args, **kwargs)
            return _starlette_response(refusal)

        return sync_wrapper

    return decorator


# ---------------------------------------------------------------------------- FastAPI


class BearerRefusal(HTTPException):
    """An RFC 6750 refusal raised by :class:`BearerPrincipal`; ``response`` is the exact answer."""

    def __init__(self, response: messages.Response) -> None:
        headers = {name: value for name, value in response.headers if name.lower() != "content-type"}
        super().__init__(response.status, detail=response.body, headers=headers)  # type: ignore[arg-type]
        self.response = response


async def _render_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BearerRefusal)
    return _starlette_response(exc.response)


def install_bearer_errors(app: Starlette) -> None:
    """Render :class:`BearerRefusal` exactly as :class:`BearerMiddleware` does (FastAPI or Starlette)."""
    app.add_exception_handler(BearerRefusal, _render_refusal)


if HAS_FASTAPI:
    __all__ += ["BearerPrincipal"]

    class BearerPrincipal(SecurityBase):
        """A FastAPI security dependency giving the handler the caller's :class:`~embedauth.models.Principal`.

        ``principal: Principal = Security(bearer, scopes=["devices:read"])``. It declares the HTTP
        bearer scheme in OpenAPI, checks the scopes FastAPI collects (``SecurityScopes``), and
        raises :class:`BearerRefusal`; call :func:`install_bearer_errors` once so refusals match
        the middleware's bytes. Behind :class:`BearerMiddleware` the caller it verified is reused.
        """

        def __init__(
            self,
            verifier: TokenVerifier,
            *,
            realm: str,
            scheme_name: str | None = None,
            description: str | None = None,
        ) -> None:
            self.guard = BearerGuard(verifier, realm=realm)
            self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
            self.scheme_name = scheme_name or type(self).__name__

        async def __call__(self, request: HTTPConnection, security_scopes: SecurityScopes) -> Principal:
            user = request.scope.get("user")
            try:
                if isinstance(user, PrincipalUser):
                    principal: Principal | None = user.principal
                else:
                    if not self.guard.ready:
                        await run_in_threadpool(self.guard.prepare)
                    principal = self.guard.authenticate(_authorization(request.scope))
                return self.guard.authorize(principal, security_scopes.scopes)
            except BearerError as error:
                raise BearerRefusal(self.guard.refusal(error)) from None
            except StorageError:
                raise BearerRefusal(_common.unavailable("a bearer check")) from None
