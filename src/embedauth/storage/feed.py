"""Change feeds: the push channel that wakes every verifier as soon as a revocation is added.

A feed only says "something changed"; the verifier then reads :meth:`~embedauth.storage.base.Storage.revocations_after`
from its last ``seq``, so a lost notification or a reconnect costs latency, never an entry. Backends
without a push channel return no feed and are polled.
"""

from __future__ import annotations

import abc
import threading
import time

from embedauth.errors import StorageError

__all__ = ["ChangeFeed", "ConnectionFeed"]


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
