"""``EmbedAuth``: one object that wires settings, storage, clock and plugins into the services.

Dependencies are injected once, here, and never threaded through calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pluggy

from embedauth.clock import Clock, system_clock
from embedauth.config import Settings
from embedauth.credentials.client_auth import ClientAuthenticator
from embedauth.credentials.secrets import SecretCache, SecretHasher
from embedauth.credentials.throttle import AuthThrottle
from embedauth.errors import ConfigurationError
from embedauth.hooks import make_plugin_manager
from embedauth.models import Principal
from embedauth.plugins import notices
from embedauth.registry.admin import Admin, AdminScope
from embedauth.registry.apps import Apps
from embedauth.registry.audit import Audit
from embedauth.registry.last_used import UseWriter
from embedauth.registry.lifecycle import Lifecycle
from embedauth.registry.permissions import Permissions
from embedauth.registry.refresh_tokens import RefreshTokens
from embedauth.registry.registrations import Registrations
from embedauth.registry.view import RegistrationView
from embedauth.storage import Storage, open_storage
from embedauth.tokens.issuer import Tokens
from embedauth.tokens.keys import KeyRing
from embedauth.tokens.revocation import RevocationState

__all__ = ["EmbedAuth"]


class EmbedAuth:
    """The library's entry point.

    ``storage`` is a URL (``sqlite:///embedauth.db``, ``memory://``, ``postgresql://…``,
    ``mysql+pymysql://…``, ``redis://…``) or an open :class:`~embedauth.storage.Storage`; other
    keyword arguments are :class:`~embedauth.config.Settings` fields (``issuer=…``,
    ``token_cache_size=0``…) applied over ``settings``, which defaults to the ``EMBEDAUTH_*``
    environment variables over the defaults (:meth:`Settings.from_env`). ``plugins`` are registered on this
    instance's own plugin manager; ``load_entrypoints=True`` also loads installed ``embedauth``
    entry points. ``plugin_manager`` shares an existing manager instead (what :meth:`with_settings`
    does), and then ``plugins`` are added to it.

    The services: :attr:`permissions`, :attr:`registrations`, :attr:`refresh_tokens`,
    :attr:`clients` (client authentication), :attr:`tokens` (the grants), :attr:`keys`,
    :attr:`revocations`, :attr:`audit` (the audit trail) and :attr:`lifecycle` (the expiry sweep).
    Audit records and last uses are written behind by threads of their own; :meth:`close` writes
    what they hold.
    """

    def __init__(
        self,
        storage: str | Storage | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock = system_clock,
        plugins: Sequence[object] = (),
        load_entrypoints: bool = False,
        plugin_manager: pluggy.PluginManager | None = None,
        **overrides: Any,
    ) -> None:
        settings = settings or Settings.from_env()
        if isinstance(storage, str):
            overrides["storage"] = storage
        self.settings = settings.replace(**overrides) if overrides else settings
        self.clock = clock
        if plugin_manager is None:
            plugin_manager = make_plugin_manager(*plugins, load_entrypoints=load_entrypoints)
        else:
            for plugin in plugins:
                plugin_manager.register(plugin)
        self.plugins: pluggy.PluginManager = plugin_manager
        if isinstance(storage, Storage):
            self.storage, self._owns_storage = storage, False
        else:
            self.storage = open_storage(
                self.settings.storage,
                clock=clock,
                plugins=self.plugins,
                timeout=self.settings.storage_timeout,
            )
            self._owns_storage = True

        self._wire()

    def _wire(self) -> None:
        """Build the services over this instance's settings, storage, clock and plugins."""
        settings, storage, clock, plugins = self.settings, self.storage, self.clock, self.plugins
        hasher = SecretHasher(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            max_concurrency=settings.argon2_max_concurrency,
            queue_timeout=settings.argon2_queue_timeout,
        )
        secret_cache = SecretCache(settings.secret_cache_size)
        throttle = AuthThrottle(
            per_identity=settings.failed_auth_limit_per_client,
            per_address=settings.failed_auth_limit_per_address,
            window=settings.failed_auth_window,
            clock=clock,
        )
        if settings.notice_file is not None and plugins.get_plugin(notices.PLUGIN_NAME) is None:
            plugins.register(notices.JsonLinesNotices(settings.notice_file, clock), name=notices.PLUGIN_NAME)
        self.audit = audit = Audit(storage, settings, clock, plugins)
        self._uses = uses = UseWriter(storage, interval=settings.last_used_interval)
        self.revocations = revocations = RevocationState(storage, settings, clock)
        self.keys = KeyRing(storage, settings, clock, revocations)
        self.permissions = Permissions(storage, clock, plugins)
        self.registrations = Registrations(storage, settings, clock, hasher, plugins, revocations, audit)
        self.apps = Apps(storage, clock, self.registrations, audit)
        self.refresh_tokens = RefreshTokens(
            storage, settings, clock, hasher, secret_cache, plugins, revocations, throttle, uses
        )
        self.clients = ClientAuthenticator(
            storage,
            settings,
            clock,
            hasher,
            secret_cache,
            plugins,
            throttle,
            RegistrationView(storage, settings, revocations),
        )
        self.tokens = Tokens(
            storage=storage,
            settings=settings,
            clock=clock,
            keys=self.keys,
            revocations=revocations,
            clients=self.clients,
            refresh_tokens=self.refresh_tokens,
            plugins=plugins,
            audit=audit,
            uses=uses,
        )
        self.lifecycle = Lifecycle(
            storage,
            settings,
            clock,
            plugins,
            registrations=self.registrations,
            refresh_tokens=self.refresh_tokens,
            audit=audit,
        )

    def admin_scope(self, admin: Admin, *, source: str | None = None) -> AdminScope:
        """What ``admin`` may do: their tenants' registrations, the catalog, their own refresh tokens,
        each change reported with their identity and ``source`` (from where: the remote address)
        and stored in the audit trail (the management API runs on this)."""
        return AdminScope(
            admin,
            registrations=self.registrations,
            permissions=self.permissions,
            refresh_tokens=self.refresh_tokens,
            audit=self.audit,
            source=source,
            apps=self.apps,
        )

    def flush(self) -> None:
        """Write what is held behind (queued audit records, last uses) now: what tests and
        short-lived scripts call; :meth:`close` does it too."""
        self._uses.flush()
        self.audit.flush()

    def prepare(self) -> None:
        """Load what verification needs (signing keys, revocation state) and start keeping it
        current: blocking I/O, bounded by ``storage_timeout``. :meth:`verify` does it on first use;
        the async middleware does it in a worker thread, never on the event loop."""
        self.tokens.prepare()

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
        return EmbedAuth(
            self.storage,
            settings=self.settings.replace(**changes),
            clock=self.clock,
            plugin_manager=self.plugins,
        )

    def close(self) -> None:
        """Stop the background threads (writing the last uses and audit records they hold), and
        close the storage if this instance opened it."""
        self.lifecycle.stop()
        self._uses.close()
        self.audit.close()
        self.revocations.stop()
        if self._owns_storage:
            self.storage.close()

    def __enter__(self) -> EmbedAuth:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
