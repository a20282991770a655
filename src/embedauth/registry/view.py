"""The registrations the token endpoint keeps in memory, and how they stay true.

A client asking for tokens again and again should cost no storage read: client authentication
(:mod:`embedauth.credentials.client_auth`) reads registrations through a :class:`RegistrationView`,
a bounded LRU map of the most recently used ones.

**Coherent through the revocation feed.** Every change of a registration ends with an entry in the
revocation log that refuses nothing and only takes a new ``seq``
(:meth:`~embedauth.tokens.revocation.RevocationState.announce_change`, written *after* the change
is saved). Every process reads that log within the feed's delay (push on Redis and PostgreSQL,
polled elsewhere) and drops the registration from its view; so does a full reload of the log
(a restart, a failover, a reconnect), which empties the view. A read that was under way when a
change notice arrived is not kept, so no view holds the state from before a change it was told of.

**Backstopped at verification.** A view is at most the feed's delay old, and what matters for
security does not depend on it being current: a pause, a narrowing of rights, a deletion, a
rotated or deleted secret each write their revocation entry *before* the change is saved, so a
token that a stale view lets a process sign is refused by every verifier that knows of the change.

**Bounded.** ``registration_cache_size`` entries; an entry is served only while the revocation
state was confirmed current lately (within three poll intervals, at least a second: with the feed
down, the view is not trusted and storage is read), and at most ``registration_cache_seconds``
after it was read, in case a change notice was lost. Unknown client IDs are never remembered.
"""

from __future__ import annotations

import threading
import time

from embedauth.config import Settings
from embedauth.lru import LRUCache
from embedauth.models import Registration
from embedauth.storage.base import Storage
from embedauth.tokens.revocation import RevocationState

__all__ = ["RegistrationView"]


class RegistrationView:
    """``get(client_id)``: the registration from memory when it can be trusted, else from storage."""

    def __init__(self, storage: Storage, settings: Settings, revocations: RevocationState) -> None:
        self._storage = storage
        self._revocations = revocations
        self._entries: LRUCache[str, tuple[Registration, float]] = LRUCache(settings.registration_cache_size)
        self._max_age = settings.registration_cache_seconds
        self._max_lag = max(1.0, 3 * settings.revocation_poll_interval)
        self._lock = threading.Lock()
        self._notices = 0  # change notices so far: a read that saw one arrive is not kept
        revocations.listen(self._changed)

    def get(self, client_id: str, *, fresh: bool = False) -> Registration | None:
        """The registration, or None; from memory in the steady state (no I/O). ``fresh``: from
        storage (remembered for the next call), as when a secret is about to be hashed: an unknown
        client and a known one with a wrong secret then cost the same storage read and argon2 run."""
        entry = None if fresh else self._entries.get(client_id)
        if entry is not None:
            registration, read_at = entry
            lag = self._revocations.age()
            if lag is not None and lag <= self._max_lag and time.monotonic() - read_at < self._max_age:
                return registration
        return self._read(client_id)

    def forget(self, client_id: str) -> None:
        """Drop ``client_id`` (this process changed it behind the registry's back: a rehash)."""
        self._changed(client_id)

    def __len__(self) -> int:
        return len(self._entries)

    def _read(self, client_id: str) -> Registration | None:
        if not self._entries.maxsize:
            return self._storage.get_registration(client_id)
        self._revocations.start()  # its feed is what keeps the view true (idempotent)
        notices = self._notices
        read_at = time.monotonic()
        registration = self._storage.get_registration(client_id)
        if registration is not None:
            with self._lock:
                if self._notices == notices:
                    self._entries.put(client_id, (registration, read_at))
        return registration

    def _changed(self, client_id: str | None) -> None:
        """A change notice for ``client_id`` (None: anything may have changed)."""
        with self._lock:
            self._notices += 1
            if client_id is None:
                self._entries.clear()
            else:
                self._entries.pop(client_id)
