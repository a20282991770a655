"""Flask: the OAuth endpoints as a blueprint, and bearer checks for views.

::

    embedauth = EmbedAuthFlask(app, auth)          # or EmbedAuthFlask(auth=auth).init_app(app)
    EmbedAuthFlask(app, auth, admin_guard=my_guard)  # also /admin/api/… and the page at /admin/

    @app.get("/devices")
    @require_scopes("devices:read")
    def devices() -> Response:
        return jsonify(client=current_principal.client_id)

The routes and answers are those of :mod:`embedauth.adapters.starlette`, byte for byte:

* The blueprint's rules take every method, so the endpoint answers 405 itself (same JSON body, same
  ``Allow``), and Flask adds no automatic ``OPTIONS``.
* Responses carry exactly the endpoint's headers, names lower-cased, then ``content-length``:
  Werkzeug's default ``text/html`` content type is not added to the revocation's empty body, nor is
  its own ``Content-Length``. Werkzeug drops the body of a ``HEAD``, keeping the ``GET`` length.
* The form is read up to :data:`~embedauth.http.messages.MAX_FORM_BYTES`, never past it;
  :class:`~embedauth.errors.StorageError` becomes 503 with ``Retry-After``.

``required=True`` protects every view (a ``before_request`` hook) except the extension's own
endpoints and the ``exempt`` paths (an exact path, or every path under one ending with ``/``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

try:  # a missing extra says which to install
    import flask  # noqa: F401 - only to know it is there
except ModuleNotFoundError as missing:  # pragma: no cover - exercised in a venv without it
    raise ModuleNotFoundError(
        "embedauth.adapters.flask needs Flask: pip install 'embedauth[flask]'", name=missing.name
    ) from missing

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from flask.sansio.blueprints import BlueprintSetupState
from werkzeug.local import LocalProxy
from werkzeug.routing import BaseConverter

from embedauth.adapters import _common
from embedauth.core import EmbedAuth
from embedauth.errors import ConfigurationError, StorageError
from embedauth.http import messages
from embedauth.http.bearer import BearerError, BearerGuard, TokenVerifier
from embedauth.http.management import MAX_BODY_BYTES, TOO_LARGE
from embedauth.models import Principal
from embedauth.registry.admin import Admin

__all__ = ["EXTENSION_KEY", "AdminGuard", "EmbedAuthFlask", "current_principal", "require_scopes"]

#: An admin guard: the embedding app's check of the caller, given Flask's ``request``; the
#: :class:`~embedauth.registry.admin.Admin`, None (nobody signed in), or
#: :class:`~embedauth.http.management.AdminRefused`.
AdminGuard = Callable[[Request], "Admin | None"]

#: The key of the extension in ``app.extensions``.
EXTENSION_KEY = "embedauth"

_P = ParamSpec("_P")


class _ExactResponse(Response):
    """A response with exactly the headers given: no default content type, no computed length."""

    default_mimetype = None
    automatically_set_content_length = False


def _flask_response(response: messages.Response) -> Response:
    body = response.content()
    headers = [(name.lower(), value) for name, value in response.headers]
    headers.append(("content-length", str(len(body))))
    return _ExactResponse(body, status=response.status, headers=headers)


def _respond(route: _common.OAuthRoute) -> Response:
    body = None
    if route.reads_form and request.method == "POST":
        try:
            limit = _common.BodyLimit(request.content_length)
            while chunk := request.stream.read(limit.remaining):
                limit.add(chunk)
        except _common.BodyTooLarge:
            return _flask_response(messages.error_response(messages.body_too_large()))
        body = limit.body()
    response = _common.answer(
        route,
        method=request.method,
        url=request.url,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        path=request.path,
        client_address=request.remote_addr,
    )
    return _flask_response(response)


class EmbedAuthFlask:
    """The Flask extension: the OAuth endpoints of ``auth`` and the bearer guard of protected views.

    ``verifier`` defaults to ``auth`` and ``realm`` to ``auth.settings.issuer``; an API that only
    checks tokens passes ``verifier`` (any :class:`~embedauth.http.bearer.TokenVerifier`) and ``realm``
    without ``auth``. ``prefix`` defaults to ``auth.settings.endpoint_prefix``, the prefix the
    metadata advertises. The extension is kept in ``app.extensions["embedauth"]``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        auth: EmbedAuth | None = None,
        *,
        verifier: TokenVerifier | None = None,
        realm: str | None = None,
        prefix: str | None = None,
        required: bool = False,
        exempt: Sequence[str] = (),
        admin: bool = False,
        admin_guard: AdminGuard | None = None,
        admin_sign_in_url: str | None = None,
    ) -> None:
        self.auth = auth
        if (admin or admin_guard is not None) and auth is None:
            raise ConfigurationError("the management API and admin page need an EmbedAuth (auth=)")
        self.admin = admin or admin_guard is not None
        self.admin_guard = admin_guard
        self.admin_sign_in_url = admin_sign_in_url
        if verifier is None:
            verifier = auth
        if realm is None and auth is not None:
            realm = auth.settings.issuer
        if verifier is not None and realm is None:
            raise ConfigurationError("EmbedAuthFlask needs a realm when it is given no EmbedAuth")
        self.guard = None if verifier is None or realm is None else BearerGuard(verifier, realm=realm)
        if prefix is None:
            prefix = "" if auth is None else auth.settings.endpoint_prefix
        self.prefix = prefix.rstrip("/")
        self.required = required
        if required and self.guard is None:
            raise ConfigurationError("required=True needs a verifier (or an EmbedAuth)")
        self.exempt = _common.ExemptPaths(exempt)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the endpoints (when there is an ``auth``) and, with ``required``, the hook."""
        app.extensions[EXTENSION_KEY] = self
        if self.auth is not None:
            app.register_blueprint(self.blueprint(self.auth))
        if self.required:
            app.before_request(self._require_caller)

    def blueprint(self, auth: EmbedAuth) -> Blueprint:
        """A blueprint named ``embedauth`` with the routes of :func:`~embedauth.adapters.starlette.oauth_routes`.

        Its rules take every method (Werkzeug's ``methods=None``, which ``add_url_rule`` cannot
        express), so the endpoint answers 405 itself, even to ``PROPFIND``, as under Starlette.
        """
        blueprint = Blueprint(EXTENSION_KEY, __name__)
        for route in _common.oauth_routes(auth, self.prefix):
            blueprint.record(_rule(route.path, route.name, functools.partial(_respond, route)))
        if self.admin:
            self._admin_rules(blueprint, auth)
        return blueprint

    def _admin_rules(self, blueprint: Blueprint, auth: EmbedAuth) -> None:
        """The management API and the admin page (see :func:`~embedauth.adapters.starlette.admin_routes`)."""
        guard = self.admin_guard
        surface = _common.AdminSurface(
            auth,
            sign_in="client_credentials" if guard is None else "app",
            sign_in_url=self.admin_sign_in_url,
        )

        def identify() -> Admin | None:
            if guard is None:
                return surface.bearer_admin(request.headers.get("Authorization"))
            return guard(request)

        def api() -> Response:
            try:
                limit = _common.BodyLimit(request.content_length, MAX_BODY_BYTES)
                while chunk := request.stream.read(limit.remaining):
                    limit.add(chunk)
            except _common.BodyTooLarge:
                return _flask_response(TOO_LARGE)
            response = surface.answer_api(
                method=request.method,
                url=request.url,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=limit.body(),
                identify=identify,
            )
            return _flask_response(response)

        prefix = surface.api.prefix
        blueprint.record(_add_converter)
        blueprint.record(_rule(prefix, "admin-api-root", api))
        blueprint.record(_rule(prefix + "/<embedauth_any:rest>", "admin-api", api))
        page = surface.page
        if page is not None:

            def files() -> Response:
                return _flask_response(page.handle(request.method, request.path))

            blueprint.record(_rule(page.path, "admin-page-root", files))
            blueprint.record(_rule(page.path + "/<embedauth_any:file>", "admin-page", files))

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` is one ``required`` does not check."""
        return path in self.exempt

    def check(self, scopes: Sequence[str]) -> Response | None:
        """The refusal when this request's caller lacks ``scopes`` (None: proceed, ``g`` holds it)."""
        guard = self.guard
        if guard is None:
            raise RuntimeError("EmbedAuthFlask has no verifier: pass auth= or verifier= and realm=")
        context = g._get_current_object()  # one context lookup, not one per use of ``g``
        try:
            principal = context.get("embedauth_principal")
            if principal is None:
                # The WSGI environ's value: what ``request.headers`` reads, without building it
                # (the server joins a repeated header with ", ", which the guard then refuses).
                principal = guard.authenticate(request.environ.get("HTTP_AUTHORIZATION"))
            context.embedauth_principal = guard.authorize(principal, scopes)
        except BearerError as error:
            return _flask_response(guard.refusal(error))
        except StorageError:  # only while the revocation state first loads
            return _flask_response(_common.unavailable("a bearer check"))
        return None

    def _require_caller(self) -> Response | None:
        if request.blueprint == EXTENSION_KEY or self.is_exempt(request.path):
            return None
        return self.check(())


class _Anything(BaseConverter):
    """The rest of a path, whatever it holds (Werkzeug's ``path`` stops at a newline): the API and
    the page answer 404 themselves, in their own formats."""

    regex = "(?s:.*)"
    part_isolating = False


def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["embedauth_any"] = _Anything


def _rule(path: str, name: str, respond: Callable[[], Response]) -> Callable[[BlueprintSetupState], None]:
    """Registers ``path`` with every method (Werkzeug's ``methods=None``, which ``add_url_rule``
    cannot express), so the endpoint answers 405 itself, even to ``PROPFIND``, as under Starlette."""

    def view(**_: str) -> Response:
        return respond()

    def register(state: BlueprintSetupState) -> None:
        endpoint = f"{state.name_prefix}.{state.name}.{name.replace('-', '_')}".lstrip(".")
        rule = state.app.url_rule_class(path, endpoint=endpoint, methods=None, strict_slashes=True)
        state.app.url_map.add(rule)
        state.app.view_functions[endpoint] = view

    return register


def _extension() -> EmbedAuthFlask:
    extension = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(extension, EmbedAuthFlask):
        raise RuntimeError("EmbedAuthFlask is not initialised on this app")
    return extension


def require_scopes(*scopes: str) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Protect a view: 401 without a valid bearer token, 403 without every one of ``scopes`` (RFC 6750).

    The caller is then :data:`current_principal` (also ``g.embedauth_principal``).
    """
    needed = tuple(scopes)

    def decorator(view: Callable[_P, Any]) -> Callable[_P, Any]:
        is_async = inspect.iscoroutinefunction(view)  # once, not per request (ensure_sync asks)

        @functools.wraps(view)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            refusal = _extension().check(needed)
            if refusal is not None:
                return refusal
            if is_async:
                return current_app.ensure_sync(view)(*args, **kwargs)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _current_principal() -> Principal:
    principal = g.get("embedauth_principal")
    if not isinstance(principal, Principal):
        raise RuntimeError("no authenticated caller: protect the view with require_scopes() or required=True")
    return principal


#: The caller of the current request, once :func:`require_scopes` (or ``required``) let it in.
current_principal: Principal = LocalProxy(_current_principal)  # type: ignore[assignment]
