"""The storage contract: what every backend stores, and which writes must be atomic.

Backends only store. They validate nothing a service already validated, make no policy decisions,
and never see a plaintext secret. Every method is synchronous and thread-safe. A driver's own
exception never escapes: it becomes :class:`~embedauth.errors.StorageError` ``from`` it (see
:meth:`Storage.translate_errors`). The behaviour below is checked, for every backend against a real
server, by ``tests/storage/test_contract.py``.

Atomicity that every backend guarantees:

* ``save_registration`` is a compare-and-set on ``version``: of two writers that read the same
  version, exactly one succeeds. Secret rotation, secret limits and certificate changes rely on it.
* A registration only ever holds permissions that exist, and ``remove_permission`` never succeeds
  while a registration holds the permission, however the two race.
* ``consume_once`` returns True exactly once per key until the key's expiry.
* ``add_revocation`` assigns strictly increasing ``seq`` numbers, and entries become visible in
  ``seq`` order (a reader that has seen ``seq`` n never later finds an entry below n).

Times are compared at millisecond resolution, the precision every model carries.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import ClassVar

from embedauth.clock import Clock
from embedauth.errors import EmbedAuthError, StorageError
from embedauth.models import (
    Page,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    SigningKey,
)

__all__ = ["SCHEMA_VERSION", "ChangeFeed", "ConnectionFeed", "Storage", "StorageFactory"]

#: The version of the stored layout this code reads and writes; backends migrate older data to it.
SCHEMA_VERSION = 1


class ChangeFeed(abc.ABC):
    """A push channel that wakes a verifier as soon as any process adds a revocation.

    Optional: a backend without one is polled. A feed only says "something changed"; the verifier
    then reads :meth:`Storage.revocations_after` from its last ``seq``, so a lost notification or a
    reconnect costs latency, never an entry.
    """

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block until a revocation is announced (True) or ``timeout`` seconds pass (False).

        Raises ``StorageError`` if the connection is lost; the next call reconnects.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection. Idempotent; a blocked :meth:`wait` may return early."""


class ConnectionFeed(ChangeFeed):
    """A feed over one connection of its own, read in short slices: the part both push feeds share.

    Thread-safe: one :meth:`wait` runs at a time, and :meth:`close` never tears down a connection
    another thread is reading (neither libpq nor redis-py connections are safe for that): a blocked
    ``wait`` notices the close within :attr:`SLICE` seconds, closes the connection itself and
    returns False. When the connection is lost ``wait`` raises ``StorageError`` once (what was
    announced meanwhile is lost, and re-read by ``seq``); the next ``wait`` connects again.

    A subclass connects and subscribes (:meth:`_connect`), disconnects, and reads one announcement.
    """

    #: How long one read may block, so a close is noticed promptly.
    SLICE = 0.25
    #: The driver's exceptions that mean the connection failed.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._io = threading.Lock()  # held while the connection is in use
        self._closed = False
        with self._io:
            self._open()

    @abc.abstractmethod
    def _connect(self) -> None:
        """Open the connection and subscribe; once this returns, every later announcement arrives."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Drop the connection, quietly (idempotent)."""

    @abc.abstractmethod
    def _connected(self) -> bool: ...

    @abc.abstractmethod
    def _next(self, timeout: float) -> bool:
        """Read for up to ``timeout`` seconds; True at the first announcement."""

    def _error(self, exc: BaseException) -> StorageError:
        detail = " ".join(str(exc).split())  # libpq's messages span lines
        return StorageError(f"{type(self).__name__}: {type(exc).__name__}: {detail}")

    def _open(self) -> None:
        try:
            self._connect()
        except self.errors as exc:
            self._disconnect()
            raise self._error(exc) from exc
        except BaseException:
            self._disconnect()
            raise

    def wait(self, timeout: float) -> bool:
        try:
            with self._io:
                if self._closed:
                    return False
                if not self._connected():
                    self._open()
                try:
                    deadline = time.monotonic() + max(0.0, timeout)
                    while not self._closed:
                        if self._next(min(max(0.0, deadline - time.monotonic()), self.SLICE)):
                            while self._next(0.0):  # a burst wakes the caller once
                                pass
                            return True
                        if time.monotonic() >= deadline:
                            break
                    return False
                except self.errors as exc:
                    self._disconnect()
                    if self._closed:
                        return False
                    raise self._error(exc) from exc
        finally:
            if self._closed:
                self._teardown()

    def _teardown(self) -> None:
        """Close the connection unless another thread is using it (that thread then does)."""
        if self._io.acquire(blocking=False):
            try:
                self._disconnect()
            finally:
                self._io.release()

    def close(self) -> None:
        self._closed = True
        self._teardown()


class Storage(abc.ABC):
    """A backend. Constructed by :func:`embedauth.storage.open_storage` from a URL.

    ``clock`` is the instance's clock: backends use it wherever "now" matters (expiry of one-time
    keys and revocations), never the system time directly.
    """

    #: Exceptions of the driver that :meth:`translate_errors` turns into ``StorageError``.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, url: str, *, clock: Clock) -> None:
        self.url = url
        self.clock = clock

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Wrap a driver call: the driver's errors become ``StorageError``; ours pass through."""
        try:
            yield
        except EmbedAuthError:
            raise
        except self.driver_errors as exc:
            raise StorageError(f"{type(self).__name__}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Release connections. Idempotent."""

    def open_change_feed(self) -> ChangeFeed | None:
        """A push feed of revocations (Redis pub/sub, PostgreSQL LISTEN/NOTIFY), or None to poll.

        A backend with a feed announces every :meth:`add_revocation` on it once the entry is
        committed.
        """
        return None

    def schema_version(self) -> int:
        """The layout version of the stored data (after migration: ``SCHEMA_VERSION``)."""
        return SCHEMA_VERSION

    # ---------------------------------------------------------------- permission catalog

    @abc.abstractmethod
    def add_permission(self, permission: Permission) -> None:
        """Store a new permission; ``AlreadyExists`` if the name is taken."""

    @abc.abstractmethod
    def get_permission(self, name: str) -> Permission | None:
        """The permission, or None."""

    @abc.abstractmethod
    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        """All permissions, or those whose name or description contains ``contains``
        (case-insensitive); sorted by name."""

    @abc.abstractmethod
    def remove_permission(self, name: str) -> None:
        """Delete it; ``PermissionNotFound`` if absent, ``PermissionInUse`` (naming no more than the
        count of holders) while any registration holds it."""

    # ---------------------------------------------------------------- registrations

    @abc.abstractmethod
    def create_registration(self, registration: Registration) -> None:
        """Store a new registration (``version`` 1) with its credentials.

        ``AlreadyExists`` if the client ID is taken; ``UnknownPermission`` (naming the missing
        scopes) if a scope is not in the catalog, and then nothing is stored.
        """

    @abc.abstractmethod
    def get_registration(self, client_id: str) -> Registration | None:
        """The registration with its secrets and certificates, or None."""

    @abc.abstractmethod
    def list_registrations(
        self, tenant: str, *, name_contains: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[Registration]:
        """The tenant's registrations, oldest first (``created_at``, then ``client_id``), filtered
        by a case-insensitive substring of the name; ``total`` counts every match."""

    @abc.abstractmethod
    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        """Replace the stored registration if its version is still ``expected_version``.

        ``registration.version`` is ``expected_version + 1``. Checked in this order:
        ``RegistrationNotFound`` if it is gone; False (changing nothing) when the stored version
        differs; ``UnknownPermission`` if a scope is not in the catalog. ``client_id``, ``tenant``
        and ``created_at`` never change (indexes rely on it). ``last_used_at`` is not written
        here: it only moves forward through :meth:`record_use`.
        """

    @abc.abstractmethod
    def record_use(self, client_id: str, at: datetime) -> None:
        """Set ``last_used_at`` to ``at`` unless it is already later. Does not change ``version``.
        A missing registration is ignored."""

    @abc.abstractmethod
    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        """Delete each registration that exists (with its credentials); return the ids deleted,
        in the order given."""

    # ---------------------------------------------------------------- one-time keys (jti)

    @abc.abstractmethod
    def consume_once(self, key: str, expires_at: datetime) -> bool:
        """True the first time ``key`` is presented; False again until ``expires_at`` has passed
        (by the storage clock), after which the key may be consumed anew. Expired keys are purged
        by the backend (lazily or by TTL)."""

    # ---------------------------------------------------------------- revocations

    @abc.abstractmethod
    def add_revocation(self, revocation: Revocation) -> int:
        """Append an entry and return its ``seq``, greater than every ``seq`` before it."""

    @abc.abstractmethod
    def revocations_after(self, seq: int) -> list[Revocation]:
        """Entries with ``seq`` greater than ``seq`` that have not expired, in ``seq`` order, each
        carrying its ``seq``. Expired entries are purged by the backend."""

    # ---------------------------------------------------------------- signing keys

    @abc.abstractmethod
    def add_signing_key(self, key: SigningKey) -> None:
        """Store a new key; ``AlreadyExists`` if the kid is taken."""

    @abc.abstractmethod
    def list_signing_keys(self) -> list[SigningKey]:
        """Every stored key, oldest first (``created_at``, then ``kid``)."""

    @abc.abstractmethod
    def save_signing_key(self, key: SigningKey) -> None:
        """Replace the stored key with the same kid; ``NotFound`` if absent."""

    @abc.abstractmethod
    def delete_signing_key(self, kid: str) -> None:
        """Delete the key if it exists."""

    # ---------------------------------------------------------------- refresh tokens

    @abc.abstractmethod
    def add_refresh_token(self, token: RefreshToken) -> None:
        """Store a new refresh token; ``AlreadyExists`` if the id is taken."""

    @abc.abstractmethod
    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """The refresh token, or None."""

    @abc.abstractmethod
    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        """The user's refresh tokens (revoked ones too), oldest first (``created_at``, then id)."""

    @abc.abstractmethod
    def record_refresh_token_use(self, token_id: str, at: datetime) -> None:
        """Set the token's ``last_used_at`` to ``at`` unless it is already later, changing nothing
        else (a concurrent revocation is never undone). A missing token is ignored."""

    @abc.abstractmethod
    def save_refresh_token(self, token: RefreshToken) -> None:
        """Replace the stored token with the same id; ``RefreshTokenNotFound`` if absent.
        ``user`` and ``created_at`` never change."""


StorageFactory = Callable[[str, Clock], Storage]
"""Builds a backend from its URL and the instance's clock (what a scheme hook returns)."""
