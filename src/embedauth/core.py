"""``EmbedAuth``: one object that wires settings, storage, clock and plugins into the services.

Dependencies are injected once, here, and never threaded through calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pluggy

from embedauth.assertions import ClientAssertions
from embedauth.clock import Clock, system_clock
from embedauth.config import Settings
from embedauth.errors import ConfigurationError
from embedauth.hooks import make_plugin_manager
from embedauth.keys import KeyRing
from embedauth.models import Principal
from embedauth.permissions import Permissions
from embedauth.refresh_tokens import RefreshTokens
from embedauth.registrations import Registrations
from embedauth.revocation import RevocationState
from embedauth.secrets import SecretCache, SecretHasher
from embedauth.storage import Storage, open_storage
from embedauth.tokens import Tokens

__all__ = ["EmbedAuth"]


class EmbedAuth:
    """The library's entry point.

    ``storage`` is a URL (``sqlite:///embedauth.db``, ``memory://``, ``postgresql://…``,
    ``mysql+pymysql://…``, ``redis://…``) or an open :class:`~embedauth.storage.Storage`; other
    keyword arguments are :class:`~embedauth.config.Settings` fields (``issuer=…``,
    ``token_cache_size=0``…) applied over ``settings``. ``plugins`` are registered on this
    instance's own plugin manager; ``load_entrypoints=True`` also loads installed ``embedauth``
    entry points.
    """

    def __init__(
        self,
        storage: str | Storage | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock = system_clock,
        plugins: Sequence[object] = (),
        load_entrypoints: bool = False,
        **overrides: Any,
    ) -> None:
        settings = settings or Settings()
        if isinstance(storage, str):
            overrides["storage"] = storage
        self.settings = settings.replace(**overrides) if overrides else settings
        self.clock = clock
        self.plugins: pluggy.PluginManager = make_plugin_manager(*plugins, load_entrypoints=load_entrypoints)
        if isinstance(storage, Storage):
            self.storage, self._owns_storage = storage, False
        else:
            self.storage = open_storage(self.settings.storage, clock=clock, plugins=self.plugins)
            self._owns_storage = True
        self._build_services()

    def _build_services(self) -> None:
        settings = self.settings
        self._hasher = SecretHasher(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._secret_cache = SecretCache(settings.secret_cache_size)
        self.revocations = RevocationState(
            self.storage, self.clock, poll_interval=settings.revocation_poll_interval
        )
        self.keys = KeyRing(self.storage, settings, self.clock)
        self.permissions = Permissions(self.storage, self.clock, self.plugins)
        self.registrations = Registrations(
            self.storage,
            settings,
            self.clock,
            self._hasher,
            self._secret_cache,
            self.plugins,
            on_revoked=self.revocations.sync,
        )
        self.refresh_tokens = RefreshTokens(
            self.storage,
            settings,
            self.clock,
            self._hasher,
            self._secret_cache,
            self.plugins,
            on_revoked=self.revocations.sync,
        )
        self.tokens = Tokens(
            storage=self.storage,
            settings=settings,
            clock=self.clock,
            keys=self.keys,
            revocations=self.revocations,
            registrations=self.registrations,
            refresh_tokens=self.refresh_tokens,
            assertions=ClientAssertions(self.storage, settings, self.clock, self.plugins),
            plugins=self.plugins,
        )

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`~embedauth.errors.InvalidToken`.

        The first call loads the revocation state and starts the thread that keeps it current.
        """
        return self.tokens.verify(token)

    def jwks(self) -> dict[str, Any]:
        """The public JSON Web Key Set (RFC 7517), creating the first signing key if needed."""
        if not self.keys.published():
            self.keys.signing_key()
        return self.keys.jwks()

    def with_settings(self, **changes: Any) -> EmbedAuth:
        """Another instance over the same storage, clock and plugins, with some settings changed."""
        if "storage" in changes:
            raise ConfigurationError("with_settings shares the storage; open another EmbedAuth instead")
        twin = EmbedAuth.__new__(EmbedAuth)
        twin.settings = self.settings.replace(**changes)
        twin.clock, twin.plugins, twin.storage = self.clock, self.plugins, self.storage
        twin._owns_storage = False
        twin._build_services()
        return twin

    def close(self) -> None:
        """Stop the revocation thread, and close the storage if this instance opened it."""
        self.revocations.stop()
        if self._owns_storage:
            self.storage.close()

    def __enter__(self) -> EmbedAuth:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
