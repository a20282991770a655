"""The admin page: its static files, its configuration and its colours, free of any web framework.

Served under ``settings.admin_page_path`` (``/admin/``): ``index.html`` and the files beside it in
:mod:`embedauth.admin`'s ``static/`` directory (read once, at start), ``config.json`` (what the page
needs to know: the product's name, where the API and the token endpoint are, how to sign in, the
secret lifetimes to offer) and ``theme.css`` (the product's colours as CSS custom properties, from
``admin_colors``).

Every answer carries a strict Content Security Policy (scripts, styles and connections only from
this origin, no inline code, no framing), ``nosniff`` and ``no-referrer``: the page shows client
secrets, so it must not run anything it did not ship.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from typing import Literal

from embedauth.config import Settings
from embedauth.http import messages

__all__ = ["CONTENT_SECURITY_POLICY", "AdminPage"]

#: What the page may load and connect to: only its own origin, nothing inline, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

SignIn = Literal["client_credentials", "app"]


def _static_files() -> dict[str, bytes]:
    """Every file of ``embedauth/admin/static`` by its name (``/index.html``…)."""
    root = importlib.resources.files("embedauth.admin") / "static"
    if not root.is_dir():
        return {}
    return {
        f"/{entry.name}": entry.read_bytes()
        for entry in root.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _TYPES)
    }


class AdminPage:
    """The page's answers. ``sign_in`` says how people sign in: ``client_credentials`` (the page
    asks for an admin registration's client ID and secret and gets a token itself, as under
    ``embedauth serve``) or ``app`` (the embedding app signs them in; the page links to
    ``sign_in_url`` when the API answers 401)."""

    def __init__(
        self, settings: Settings, *, sign_in: SignIn = "client_credentials", sign_in_url: str | None = None
    ) -> None:
        self.path = settings.admin_page_path
        self._files = _static_files()
        config: dict[str, object] = {
            "product_name": settings.admin_product_name,
            "api": settings.admin_api_prefix,
            "token_endpoint": settings.endpoint_prefix.rstrip("/") + "/oauth/token",
            "sign_in": sign_in,
            "secret_lifetime_days": list(settings.secret_lifetime_days),
            "default_secret_days": settings.default_secret_days,
            "max_rotation_grace": settings.max_rotation_grace,
        }
        if sign_in_url is not None:
            config["sign_in_url"] = sign_in_url
        self._files["/config.json"] = messages.json_bytes(config)
        theme = settings.admin_theme()  # checked as #rrggbb: nothing else reaches the CSS
        self._files["/theme.css"] = (
            ":root{" + "".join(f"--{name}:{value};" for name, value in theme.items()) + "}\n"
        ).encode("ascii")

    @property
    def files(self) -> Mapping[str, bytes]:
        """What the page serves, by path below :attr:`path`."""
        return self._files

    def handle(self, method: str, path: str) -> messages.Response:
        """The answer to ``method`` on ``path`` (the full path: ``/admin/``, ``/admin/admin.js``…)."""
        if path == self.path:  # /admin: the page is /admin/, so that its relative links work
            return messages.Response(308, (("Location", self.path + "/"), *_HEADERS))
        name = path[len(self.path) :]
        if name == "/":
            name = "/index.html"
        body = self._files.get(name)
        if body is None:
            return messages.Response(
                404, (("Content-Type", "text/plain; charset=utf-8"), *_HEADERS), b"not found\n"
            )
        if method not in ("GET", "HEAD"):
            return messages.Response(
                405,
                (("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD"), *_HEADERS),
                b"GET only\n",
            )
        suffix = name[name.rindex(".") :]
        return messages.Response(200, (("Content-Type", _TYPES[suffix]), *_HEADERS), body)
