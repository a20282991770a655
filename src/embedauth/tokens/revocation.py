"""Revocation that takes effect at once: the in-memory state every verifier checks, kept current.

Pausing or deleting a registration, rotating a secret, removing a certificate, revoking a refresh
token or an access token each append an entry to storage (see :mod:`embedauth.registry.registrations`). Every
process holds all unexpired entries in three dictionaries and checks a token against them with three
lookups, no I/O. A background thread keeps them current: it waits on the backend's push feed (Redis
pub/sub, PostgreSQL LISTEN/NOTIFY) or, without one, for ``revocation_poll_interval`` seconds, then
reads the entries after the last one it saw. Because it reads by sequence number, a lost
notification or a dropped connection delays an entry but never loses it; after a reconnect the
next read is a full catch-up.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime, timedelta

from embedauth.clock import Clock, to_timestamp
from embedauth.config import Settings
from embedauth.errors import StorageError
from embedauth.models import Revocation, RevocationKind
from embedauth.storage.base import Storage
from embedauth.storage.feed import ChangeFeed

__all__ = ["RevocationState", "revocation_entry"]

log = logging.getLogger(__name__)


def revocation_entry(kind: RevocationKind, subject: str, now: datetime, settings: Settings) -> Revocation:
    """An entry revoking every token tied to ``subject`` and issued up to ``now``.

    It lives until the last such token can no longer be accepted anyway (``settings.max_token_age``).
    """
    return Revocation(kind, subject, since=now, expires_at=now + timedelta(seconds=settings.max_token_age))


class RevocationState:
    """The unexpired revocation entries, in memory, and the thread that keeps them current."""

    def __init__(self, storage: Storage, clock: Clock, *, poll_interval: float) -> None:
        self._storage = storage
        self._clock = clock
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._seq = 0
        # subject -> (since, expires): tokens tied to the subject and issued at or before `since`
        # are revoked until `expires`, when every such token has expired anyway.
        self._clients: dict[str, tuple[float, float]] = {}
        self._credentials: dict[str, tuple[float, float]] = {}
        self._tokens: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._feed: ChangeFeed | None = None

    def is_revoked(
        self, *, client_id: str, credential_id: str | None, token_id: str, issued_at: float
    ) -> bool:
        """Whether a token with these claims is revoked. Three dictionary lookups, no I/O."""
        entry = self._clients.get(client_id)
        if entry is not None and issued_at <= entry[0]:
            return True
        if credential_id is not None:
            entry = self._credentials.get(credential_id)
            if entry is not None and issued_at <= entry[0]:
                return True
        return token_id in self._tokens

    # ------------------------------------------------------------------ keeping current

    def sync(self) -> None:
        """Read the entries added since the last read, and forget the expired ones."""
        with self._lock:
            entries = self._storage.revocations_after(self._seq)
            for entry in entries:
                self._apply(entry)
            now = self._clock()
            for table in (self._clients, self._credentials, self._tokens):
                for subject in [s for s, (_, expires) in table.items() if expires <= now]:
                    del table[subject]

    def _apply(self, entry: Revocation) -> None:
        table = {
            RevocationKind.REGISTRATION: self._clients,
            RevocationKind.CREDENTIAL: self._credentials,
            RevocationKind.REFRESH_TOKEN: self._credentials,
            RevocationKind.ACCESS_TOKEN: self._tokens,
        }[entry.kind]
        since, expires = to_timestamp(entry.since), to_timestamp(entry.expires_at)
        known = table.get(entry.subject)
        if known is not None:
            since, expires = max(since, known[0]), max(expires, known[1])
        table[entry.subject] = (since, expires)
        self._seq = max(self._seq, entry.seq)

    def start(self) -> None:
        """Load the state, then keep it current in a daemon thread (idempotent, thread-safe)."""
        if self._thread is not None:
            return
        with self._starting:
            if self._thread is None:
                self.sync()
                thread = threading.Thread(target=self._run, name="embedauth-revocations", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self) -> None:
        """Stop the thread and close the feed (the state stays as it was)."""
        self._stop.set()
        if self._feed is not None:
            self._feed.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._feed is None:
                    self._feed = self._storage.open_change_feed()
                    self.sync()  # catch up on whatever was announced while disconnected
                if self._feed is not None:
                    self._feed.wait(self._poll_interval)
                else:
                    self._stop.wait(self._poll_interval)
                if not self._stop.is_set():
                    self.sync()
            except StorageError as exc:
                log.warning("revocation feed: %s; reconnecting", exc)
                self._close_feed()
                self._stop.wait(self._poll_interval)
            except Exception:  # a bug must not silently end revocation
                log.exception("revocation feed failed; retrying")
                self._close_feed()
                self._stop.wait(self._poll_interval)
        self._close_feed()

    def _close_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            with contextlib.suppress(StorageError):
                feed.close()
