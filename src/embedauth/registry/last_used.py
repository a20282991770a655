"""``last_used_at``, written behind: a use is noted in memory, and a background thread writes the
latest use of each registration, credential and refresh token once per interval.

A token exchange is a read; writing its time on every request would make every request a write,
and waiting for that write would put storage on the request's path. :meth:`UseWriter.note` only
records the time in a dictionary; the writer thread wakes every ``last_used_interval`` seconds and
writes each pending use once (``record_use`` moves the registration's and the credential's
``last_used_at`` forward together). So each process writes at most one use per credential per
interval, whatever the request rate, and the stored time is at most one interval behind the last
use it saw. What is pending is bounded (:data:`MAX_PENDING` keys: past it the thread is woken
early), and a storage error keeps the pending uses for the next round (a newer use replaces an
older one). :meth:`UseWriter.flush` writes at once: tests, and ``EmbedAuth.close``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from embedauth.errors import EmbedAuthError
from embedauth.storage.base import Storage

__all__ = ["MAX_PENDING", "UseWriter"]

log = logging.getLogger(__name__)

#: Distinct keys held before the writer is woken early.
MAX_PENDING = 10_000

_Key = tuple[str, str, str | None]  # ("registration", client_id, credential id) | ("refresh_token", id, None)


class UseWriter:
    """Notes uses and writes the latest of each behind, from a thread of its own."""

    def __init__(self, storage: Storage, *, interval: float) -> None:
        self._storage = storage
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[_Key, datetime] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._flushing = threading.Lock()

    def note(self, client_id: str, credential_id: str | None, at: datetime) -> None:
        """A registration was used with this credential at ``at``: nothing is written here."""
        self._note(("registration", client_id, credential_id), at)

    def note_refresh_token(self, token_id: str, at: datetime) -> None:
        """A person's refresh token was used at ``at``."""
        self._note(("refresh_token", token_id, None), at)

    def _note(self, key: _Key, at: datetime) -> None:
        with self._lock:
            known = self._pending.get(key)
            if known is None or known < at:
                self._pending[key] = at
            if len(self._pending) >= MAX_PENDING:
                self._wake.set()
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._run, name="embedauth-last-used", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except EmbedAuthError as exc:
                log.warning("embedauth: last uses not written yet: %s", exc)

    def flush(self) -> int:
        """Write every pending use now; return the number of writes. A storage error propagates
        and the uses not written stay pending."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
            written = 0
            try:
                for (kind, key, credential_id), at in list(batch.items()):
                    if kind == "registration":
                        self._storage.record_use(key, at, credential_id=credential_id)
                    else:
                        self._storage.record_refresh_token_use(key, at)
                    del batch[(kind, key, credential_id)]
                    written += 1
            finally:
                if batch:  # put back what was not written, unless a newer use came meanwhile
                    with self._lock:
                        for pending_key, at in batch.items():
                            known = self._pending.get(pending_key)
                            if known is None or known < at:
                                self._pending[pending_key] = at
            return written

    def close(self) -> None:
        """Stop the thread and write what is pending (a storage error is logged)."""
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self._interval + 5)
        try:
            self.flush()
        except EmbedAuthError as exc:
            log.error("embedauth: last uses lost at close: %s", exc)
