"""Revocation that cannot be outrun: the in-memory state every verifier checks, and how it stays true.

**What is revoked, by facts without clocks where possible.** Every access token carries its
registration's *generation* (``gen``), the credential it was obtained with (``cred``), its id
(``jti``) and the key that signed it (``kid``). Storage holds one entry per fact
(:class:`~embedauth.models.Revocation`):

* a pause, a narrowing of rights or a deletion: tokens of the registration below a generation
  (every pause and restore bumps the generation, so tokens from before a pause stay dead after the
  restore, and a token a stale process signs after the pause carries the old generation);
* a rotated or deleted secret, a removed certificate, a revoked refresh token: every token obtained
  with that credential (ids are never reused);
* one access token (RFC 7009), by ``jti``; past :attr:`~embedauth.config.Settings.revocation_client_token_limit`
  entries for one client, its tokens up to the latest ``iat`` revoked are coalesced into one
  "issued at or before t" entry, the one check that compares times, and that fails closed within
  ``revocation_skew`` seconds;
* a withdrawn signing key: every token it signed.

None of these depend on the issuer having been up to date, nor on clocks agreeing.

**How every process knows.** Each entry lives until the longest-lived token it could refuse has
expired: the deployment's ``max_token_age`` (which every issuer raises to its own before it signs,
:meth:`RevocationState.ensure_max_token_age`) plus the skew margin. A background thread waits on the
backend's push feed (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) or polls, then reads the entries
after the last ``seq`` it saw; a lost notification costs latency, never an entry. It reloads the
whole log, merging (entries only ever refuse more), when the store's epoch changes or its ``seq``
went backwards (restored from a backup, failed over to a replica that was behind, restarted
empty), after any failure or reconnect, and every ``revocation_full_reload_interval`` seconds.

**Bounded and told.** The state is bounded (per-client coalescing, then the largest clients'
entries coalesced past ``revocation_token_limit``); expired entries leave by a heap, not a scan.
When the state has not been confirmed current for ``max_staleness`` seconds (storage down), checks
fail closed with :class:`~embedauth.errors.StorageError`, which the HTTP layer answers with 503.
Writers apply their own entries at once (:meth:`RevocationState.record`), without waiting for the
feed and without taking the reader's lock across any I/O.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from embedauth.clock import Clock, to_timestamp, utcnow
from embedauth.config import Settings
from embedauth.errors import StorageError
from embedauth.models import Revocation, RevocationHead, RevocationKind
from embedauth.storage.base import Storage
from embedauth.storage.feed import ChangeFeed

__all__ = ["RevocationState"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class _Token:
    client_id: str | None
    issued_at: int
    expires: float


class RevocationState:
    """The unexpired revocation entries, in memory, and the thread that keeps them current."""

    def __init__(self, storage: Storage, settings: Settings, clock: Clock) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()  # guards the tables; never held across I/O
        self._syncing = threading.Lock()  # one sync at a time
        # The tables: subject -> (value, expires). Read without the lock (dict reads are atomic).
        self._generations: dict[str, tuple[int, float]] = {}  # client -> lowest generation accepted
        self._credentials: dict[str, float] = {}
        self._keys: dict[str, float] = {}
        self._tokens: dict[str, _Token] = {}
        self._client_tokens: defaultdict[str, set[str]] = defaultdict(set)
        self._clients_before: dict[str, tuple[int, float]] = {}  # client -> (latest iat revoked, expires)
        self._expiry: list[tuple[float, str, str]] = []  # heap of (expires, kind, subject)
        self._epoch: str | None = None
        self._seq = 0
        self._max_token_age = settings.max_token_age
        self._raised_to = 0
        self._loaded_at: float | None = None  # monotonic time of the last confirmed-current read
        self._full_at = 0.0  # monotonic time of the last full reload
        self._needs_full = True
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._feed: ChangeFeed | None = None
        self._warned_at = -math.inf
        self._unwarned = 0
        self._listeners: list[Callable[[str | None], None]] = []

    # ------------------------------------------------------------------ the checks (no I/O)

    def is_revoked(
        self,
        *,
        client_id: str,
        credential_id: str | None,
        token_id: str,
        issued_at: float,
        generation: int = 0,
        kid: str | None = None,
    ) -> bool:
        """Whether a token with these claims is revoked: a few dictionary lookups, no I/O."""
        entry = self._generations.get(client_id)
        if entry is not None and generation < entry[0]:
            return True
        if credential_id is not None and credential_id in self._credentials:
            return True
        if token_id in self._tokens:
            return True
        if kid is not None and kid in self._keys:
            return True
        before = self._clients_before.get(client_id)
        return before is not None and issued_at <= before[0] + self._settings.revocation_skew

    def check_current(self) -> None:
        """``StorageError`` unless the state was confirmed current within ``max_staleness`` seconds."""
        loaded_at = self._loaded_at
        if loaded_at is None:
            raise StorageError("the revocation state has not been loaded")
        age = time.monotonic() - loaded_at
        if age > self._settings.max_staleness:
            raise StorageError(f"the revocation state is {age:.0f} s old (storage unreachable)")

    def age(self) -> float | None:
        """Seconds since the state was last confirmed current, or None before the first load."""
        return None if self._loaded_at is None else time.monotonic() - self._loaded_at

    def size(self) -> int:
        """How many entries the state holds."""
        return (
            len(self._generations)
            + len(self._credentials)
            + len(self._keys)
            + len(self._tokens)
            + len(self._clients_before)
        )

    # ------------------------------------------------------------------ writing

    def entry(
        self,
        kind: RevocationKind,
        subject: str,
        *,
        generation: int = 0,
        client_id: str | None = None,
        issued_at: int = 0,
        until: datetime | None = None,
    ) -> Revocation:
        """An entry that lives until no token it refuses can be accepted any more.

        By default that is the deployment's ``max_token_age`` (read from storage now: an issuer
        with a longer lifetime may have raised it since) plus ``revocation_skew`` from now;
        ``until`` (one access token's expiry) may shorten it.
        """
        self._max_token_age = max(self._max_token_age, self._storage.revocation_head().max_token_age)
        now = utcnow(self._clock)
        lifetime = timedelta(seconds=self.max_token_age() + self._settings.revocation_skew)
        expires_at = now + lifetime if until is None else min(now + lifetime, max(until, now))
        return Revocation(
            kind, subject, expires_at, generation=generation, client_id=client_id, issued_at=issued_at
        )

    def write(self, entry: Revocation) -> Revocation:
        """Store ``entry`` (the caller applies it with :meth:`record` once its change is done)."""
        return dataclasses.replace(entry, seq=self._storage.add_revocation(entry))

    def record(self, *entries: Revocation) -> None:
        """Apply entries this process wrote, at once: no wait for the feed, no storage read."""
        with self._lock:
            for entry in entries:
                self._apply(entry)

    def revoke(self, entry: Revocation) -> None:
        """Store ``entry`` and apply it here."""
        self.record(self.write(entry))

    def announce_change(self, client_id: str) -> None:
        """Tell every process that registration ``client_id`` changed (after the change is saved).

        The entry refuses nothing (generation 0 merges into whatever the registration's entry
        holds) and only takes a new ``seq``, so every process's feed delivers it and its
        :class:`~embedauth.registry.view.RegistrationView` drops the registration. A failure is
        logged, not raised: the change itself is saved, and views hold a registration at most
        ``registration_cache_seconds``.
        """
        try:
            self.revoke(self.entry(RevocationKind.REGISTRATION, client_id))
        except StorageError as exc:
            log.warning(
                "embedauth: the change of registration %s was saved but not announced: %s", client_id, exc
            )

    def listen(self, listener: Callable[[str | None], None]) -> None:
        """Call ``listener(client_id)`` for every new registration entry (a change or a revocation
        of that registration: one this process wrote, or one read past the last seq), and
        ``listener(None)`` after every reload that follows a gap (a reconnect, a failure, a log
        that went back: a notice may have been missed) and whenever the feed fails. It runs under
        the state's lock: memory only, no I/O."""
        self._listeners.append(listener)

    def token_entries(self, client_id: str) -> int:
        """How many single access tokens of ``client_id`` the state holds as revoked."""
        return len(self._client_tokens.get(client_id, ()))

    def max_token_age(self) -> int:
        """The longest any issuer of the deployment lets a token be accepted (as last read)."""
        return max(self._max_token_age, self._settings.max_token_age)

    def ensure_max_token_age(self) -> None:
        """Before this process signs: the deployment's bound covers its tokens (once per process)."""
        wanted = self._settings.max_token_age
        if self._raised_to < wanted:
            stored = self._storage.raise_max_token_age(wanted)
            self._max_token_age = max(self._max_token_age, stored)
            self._raised_to = wanted

    # ------------------------------------------------------------------ keeping current

    def sync(self) -> None:
        """Read what changed since the last read (or everything, when due), and forget the expired."""
        with self._syncing:
            head = self._storage.revocation_head()
            # A notice may have been missed: a reconnect, a failure, a log that went back.
            gap = self._needs_full or head.epoch != self._epoch or head.seq < self._seq
            full = gap or time.monotonic() - self._full_at >= self._settings.revocation_full_reload_interval
            if full and self._epoch is not None and (head.epoch != self._epoch or head.seq < self._seq):
                log.warning(
                    "embedauth: the revocation log went back (epoch %s seq %d, was %s seq %d); reloading it",
                    head.epoch,
                    head.seq,
                    self._epoch,
                    self._seq,
                )
            entries = self._storage.revocations_after(0 if full else self._seq)
            self._absorb(head, entries, full=full, gap=gap)

    def _absorb(self, head: RevocationHead, entries: list[Revocation], *, full: bool, gap: bool) -> None:
        with self._lock:
            # Entries commit in seq order, so only those past the last seq read are news: a scheduled
            # full reload re-reads the rest, and must not drop every changed registration from views.
            seen = self._seq
            for entry in entries:
                self._apply(entry, notify=entry.seq > seen)
            self._forget_expired(self._clock())
            self._bound()
            # After a full read the log's own position holds, even when it went back.
            self._seq = max(head.seq, *(entry.seq for entry in entries), 0 if full else self._seq)
            if gap:  # not a scheduled reload: listeners may have missed a notice
                for listener in self._listeners:
                    listener(None)
            self._epoch = head.epoch
            self._max_token_age = max(self._max_token_age, head.max_token_age)
            now = time.monotonic()
            self._loaded_at = now
            if full:
                self._full_at, self._needs_full = now, False

    def _apply(self, entry: Revocation, *, notify: bool = True) -> None:
        expires = to_timestamp(entry.expires_at)
        subject = entry.subject
        if entry.kind is RevocationKind.REGISTRATION:
            known = self._generations.get(subject, (0, 0.0))
            self._generations[subject] = (max(known[0], entry.generation), max(known[1], expires))
            if notify:
                for listener in self._listeners:
                    listener(subject)
        elif entry.kind is RevocationKind.CREDENTIAL:
            self._credentials[subject] = max(self._credentials.get(subject, 0.0), expires)
        elif entry.kind is RevocationKind.SIGNING_KEY:
            self._keys[subject] = max(self._keys.get(subject, 0.0), expires)
        elif entry.kind is RevocationKind.CLIENT_TOKENS:
            self._coalesce(subject, entry.issued_at, expires)
        elif entry.kind is RevocationKind.ACCESS_TOKEN:
            known_token = self._tokens.get(subject)
            if known_token is not None:
                known_token.expires = max(known_token.expires, expires)
            else:
                self._tokens[subject] = _Token(entry.client_id, entry.issued_at, expires)
                if entry.client_id is not None:
                    tokens = self._client_tokens[entry.client_id]
                    tokens.add(subject)
                    if len(tokens) > self._settings.revocation_client_token_limit:
                        self._coalesce_tokens(entry.client_id)
        heapq.heappush(self._expiry, (expires, entry.kind.value, subject))

    def _coalesce(self, client_id: str, issued_at: int, expires: float) -> None:
        known = self._clients_before.get(client_id, (0, 0.0))
        self._clients_before[client_id] = (max(known[0], issued_at), max(known[1], expires))

    def _coalesce_tokens(self, client_id: str) -> None:
        """One client's single-token entries become one "issued at or before" entry."""
        jtis = self._client_tokens.pop(client_id, set())
        tokens = [self._tokens.pop(jti) for jti in jtis if jti in self._tokens]
        if tokens:
            latest = max(token.issued_at for token in tokens)
            self._coalesce(client_id, latest, max(token.expires for token in tokens))
            heapq.heappush(self._expiry, (self._clients_before[client_id][1], "client_tokens", client_id))

    def _bound(self) -> None:
        """Past ``revocation_token_limit`` single-token entries, coalesce the clients with the most."""
        limit = self._settings.revocation_token_limit
        while len(self._tokens) > limit and self._client_tokens:
            self._coalesce_tokens(max(self._client_tokens, key=lambda c: len(self._client_tokens[c])))

    def _forget_expired(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, kind, subject = heapq.heappop(heap)
            if kind == RevocationKind.REGISTRATION.value:
                generation = self._generations.get(subject)
                if generation is not None and generation[1] <= now:
                    del self._generations[subject]
            elif kind == RevocationKind.CREDENTIAL.value:
                if self._credentials.get(subject, now + 1) <= now:
                    del self._credentials[subject]
            elif kind == RevocationKind.SIGNING_KEY.value:
                if self._keys.get(subject, now + 1) <= now:
                    del self._keys[subject]
            elif kind == RevocationKind.CLIENT_TOKENS.value:
                before = self._clients_before.get(subject)
                if before is not None and before[1] <= now:
                    del self._clients_before[subject]
            else:
                token = self._tokens.get(subject)
                if token is not None and token.expires <= now:
                    del self._tokens[subject]
                    if token.client_id is not None:
                        jtis = self._client_tokens.get(token.client_id)
                        if jtis is not None:
                            jtis.discard(subject)
                            if not jtis:
                                del self._client_tokens[token.client_id]

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        """Load the state, then keep it current in a daemon thread (idempotent, thread-safe).

        Blocks for the first load (bounded by the storage timeout); raises ``StorageError`` if
        storage cannot be read, and may be called again.
        """
        if self._thread is not None:
            return
        with self._starting:
            if self._thread is None:
                self.sync()
                thread = threading.Thread(target=self._run, name="embedauth-revocations", daemon=True)
                thread.start()
                self._thread = thread

    def started(self) -> bool:
        """Whether :meth:`start` has loaded the state and the thread runs."""
        return self._thread is not None

    def wake(self) -> None:
        """Ask the thread to read storage now (without waiting for it)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and close the feed (the state stays as it was)."""
        self._stop.set()
        self._wake.set()
        if self._feed is not None:
            self._feed.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        interval = self._settings.revocation_poll_interval
        connected = False
        while not self._stop.is_set():
            try:
                if not connected:
                    self._feed = self._storage.open_change_feed()  # None: this backend is polled
                    connected, self._needs_full = True, True  # whatever was announced meanwhile
                    self.sync()
                if self._feed is not None and not self._wake.is_set():
                    self._feed.wait(interval)
                else:
                    self._wake.wait(interval)
                self._wake.clear()
                if not self._stop.is_set():
                    self.sync()
            except StorageError as exc:
                self._warn(f"revocation feed: {exc}; reconnecting")
                connected = self._failed()
            except Exception:  # a bug must not silently end revocation
                log.exception("embedauth: revocation feed failed; retrying")
                connected = self._failed()
        self._close_feed()

    def _warn(self, message: str) -> None:
        """A warning, at most once every ten seconds (an outage is one event, not one per retry)."""
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            suffix = f" ({self._unwarned} more since the last report)" if self._unwarned else ""
            log.warning("embedauth: %s%s", message, suffix)
            self._warned_at, self._unwarned = now, 0
        else:
            self._unwarned += 1

    def _failed(self) -> bool:
        """After a failure: reload everything next time, reconnect after a pause. Returns False.
        Listeners hear None at once: what they keep from storage is not kept current meanwhile."""
        self._needs_full = True
        with self._lock:
            for listener in self._listeners:
                listener(None)
        self._close_feed()
        self._stop.wait(self._settings.revocation_poll_interval)
        return False

    def _close_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            with contextlib.suppress(StorageError):
                feed.close()
