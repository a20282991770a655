"""Storage backends, chosen by URL scheme.

``memory://``, ``sqlite:///path.db``, ``postgresql://…``, ``mysql+pymysql://…`` and ``redis://…`` are
built in; a plugin adds a scheme through the ``embedauth_storage_schemes`` hook.
"""

from __future__ import annotations

import pluggy

from embedauth.clock import Clock
from embedauth.errors import ConfigurationError
from embedauth.storage.base import DEFAULT_TIMEOUT, Storage, StorageFactory

__all__ = ["Storage", "StorageFactory", "open_storage"]


def open_storage(
    url: str, *, clock: Clock, plugins: pluggy.PluginManager, timeout: float = DEFAULT_TIMEOUT
) -> Storage:
    """The backend for ``url``, from the schemes the plugin manager knows, with its timeouts."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    factories: dict[str, StorageFactory] = {}
    # pluggy calls the last-registered plugin first: apply in reverse so that a plugin registered
    # after the built-ins may replace one of their schemes.
    for provided in reversed(plugins.hook.embedauth_storage_schemes()):
        factories.update(provided)
    factory = factories.get(scheme)
    if factory is None:
        known = ", ".join(sorted(factories))
        raise ConfigurationError(f"unknown storage URL scheme {scheme!r} in {_redact(url)}; known: {known}")
    return factory(url, clock, timeout)


def _redact(url: str) -> str:
    """The URL without a password, for error messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.partition(':')[0]}:***@{host}"
