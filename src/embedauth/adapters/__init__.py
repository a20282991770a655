"""Web-framework adapters: they only translate requests and responses, the logic lives in the core.

* :mod:`embedauth.adapters.starlette`: the OAuth routes (:func:`~embedauth.adapters.starlette.oauth_routes`,
  :func:`~embedauth.adapters.starlette.mount_oauth`), the pure ASGI
  :class:`~embedauth.adapters.starlette.BearerMiddleware`, the
  :func:`~embedauth.adapters.starlette.requires_scopes` decorator and, when FastAPI is installed, the
  :class:`~embedauth.adapters.starlette.BearerPrincipal` security dependency.
* :mod:`embedauth.adapters.flask`: the :class:`~embedauth.adapters.flask.EmbedAuthFlask` extension,
  the :func:`~embedauth.adapters.flask.require_scopes` decorator and
  :data:`~embedauth.adapters.flask.current_principal`.

Both call the same :class:`~embedauth.http.oauth.OAuthEndpoints` and :class:`~embedauth.http.bearer.BearerGuard`,
so for the same request they answer the same status, headers and body bytes
(``tests/adapters/test_conformance.py`` holds them to it). Import the one you use: each imports its
framework, and nothing here imports either.
"""
