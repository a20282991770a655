"""The audit trail: who did what, to which registration, when and from where, stored with a bound.

Every admin action (the management API, the tenant-bound handle, the command) and every token
issued or refused at the token endpoint becomes one :class:`~embedauth.models.AuditRecord`, and
every expiry notice the sweep sends too. :meth:`Audit.record` is the one way in: it builds the
record (its detail reduced to a few short, non-secret values) and puts it on a bounded queue; a
background thread writes the queue to storage in batches every ``audit_flush_interval`` seconds,
so a token request never waits for an audit write. The same thread hands each record to the
``embedauth_audit_record`` hook (external sinks) and, at most every :data:`PRUNE_INTERVAL`, prunes
what is older than ``audit_retention_days`` or beyond ``audit_max_records`` (the sweep prunes too).

Bounds, and what happens at them: the queue holds ``audit_queue_size`` records; when storage is
down or slower than the records come, the oldest unwritten ones are dropped, counted, logged, and
an ``audit.dropped`` record says how many once writing works again. A process that ends without
:meth:`Audit.close` (``EmbedAuth.close``) loses at most one interval of records. :meth:`Audit.flush`
writes everything queued at once: what tests (and the command, on exit) call.

**A burst is one record.** Token requests that differ only in the token (the same client,
credential, scopes, source and outcome, until the next write) are one record whose detail counts
them (``count``, ``last_at``, the first 50 ``token_ids``, the last ``expires_at``): a client asking
for tokens in a loop, or a stranger sending bad secrets as fast as the network allows, cannot push
the admins' records out of a trail bounded by ``audit_max_records``, storage writes one row per
burst instead of one per request, and a request that joins an open burst costs a counter, not a
queued record. A single request is one record, as it is.

Nothing secret is ever recorded: callers pass ids, names and reasons, never a secret or a token,
and :func:`clean_detail` keeps only short scalar values (or short lists of them) under short keys.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import logging
import secrets
import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pluggy

from embedauth import validation
from embedauth.clock import Clock, from_timestamp, utcnow
from embedauth.config import Settings
from embedauth.errors import EmbedAuthError, InvalidInput
from embedauth.models import AuditRecord, Page
from embedauth.storage.base import Storage

__all__ = ["MAX_AUDIT_OFFSET", "MAX_AUDIT_PAGE", "PRUNE_INTERVAL", "Audit", "clean_detail"]

log = logging.getLogger(__name__)

#: The longest page of records a listing returns.
MAX_AUDIT_PAGE = 500
#: The deepest offset a listing accepts (go further back with ``since`` and a narrower filter).
MAX_AUDIT_OFFSET = 10_000
#: Seconds between two prunes by the same process's writer thread.
PRUNE_INTERVAL = 600.0
_TEXT = 200  # characters kept of any text value
_KEYS = 20  # keys kept of a detail
_ITEMS = 50  # items kept of a list value
#: Actions whose records are coalesced within one write when they differ only in these details.
_COALESCED = frozenset({"token.issued", "token.refused"})
_VARYING = ("token_id", "expires_at")


def _text(value: object, limit: int = _TEXT) -> str:
    return str(value)[:limit]


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` reduced to what a record may hold: at most 20 keys of 64 characters, each value
    None, a bool, a number, a text of at most 200 characters, or a list of at most 50 of those."""
    cleaned: dict[str, Any] = {}
    for key, value in list((detail or {}).items())[:_KEYS]:
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
            cleaned[_text(key, 64)] = [_scalar(v) for v in items[:_ITEMS]]
        else:
            cleaned[_text(key, 64)] = _scalar(value)
    return cleaned


def _scalar(value: object) -> bool | int | float | str | None:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, datetime):
        from embedauth.clock import isoformat

        return isoformat(value)
    return _text(value)


def _burst_key(action: str, *fields: Any, detail: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What a token request shares with the others of its burst: everything but the token."""
    same = tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in (detail or {}).items() if k not in _VARYING
    )
    return (action, *fields, same)


class _Burst:
    """The token requests after a burst's first record, until that record is written."""

    __slots__ = ("count", "expires_at", "last_at", "token_ids")

    def __init__(self) -> None:
        self.count = 1
        self.last_at: float | None = None  # the clock's time of the last request
        self.token_ids: list[Any] = []
        self.expires_at: Any = None

    def add(self, at: float, detail: Mapping[str, Any]) -> None:
        self.count += 1
        self.last_at = at
        token_id = detail.get("token_id")
        if token_id is not None and len(self.token_ids) < _ITEMS - 1:
            self.token_ids.append(token_id)
        self.expires_at = detail.get("expires_at", self.expires_at)

    def merged(self, first: AuditRecord) -> AuditRecord:
        """``first`` counting the whole burst (itself when it stayed alone)."""
        if self.count == 1:
            return first
        detail = {k: v for k, v in first.detail.items() if k not in _VARYING}
        assert self.last_at is not None
        detail.update(count=self.count, last_at=_scalar(from_timestamp(self.last_at)))
        token_ids = [first.detail["token_id"]] if "token_id" in first.detail else []
        token_ids += [_scalar(t) for t in self.token_ids]
        if token_ids:
            detail["token_ids"] = token_ids
        if self.expires_at is not None:
            detail["expires_at"] = _scalar(self.expires_at)
        elif "expires_at" in first.detail:
            detail["expires_at"] = first.detail["expires_at"]
        return dataclasses.replace(first, detail=detail)


class Audit:
    """``auth.audit``: record events, read them back, and the writer that stores them behind."""

    def __init__(
        self, storage: Storage, settings: Settings, clock: Clock, plugins: pluggy.PluginManager
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._hook = plugins.hook
        self._lock = threading.Lock()
        self._queue: collections.deque[AuditRecord] = collections.deque()
        # Token requests coalesced at once (see the module docstring): the open burst of each kind
        # of request, and every burst by the id of its first record (queued until written).
        self._open: dict[tuple[Any, ...], _Burst] = {}
        self._bursts: dict[str, tuple[tuple[Any, ...], _Burst]] = {}
        self._dropped = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._flushing = threading.Lock()
        self._last_prune = 0.0

    # ------------------------------------------------------------------ recording

    def record(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        client_id: str | None = None,
        target: str | None = None,
        source: str | None = None,
        outcome: str = "success",
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one record (written within ``audit_flush_interval``); a token request that
        joins an open burst only counts in it."""
        key = None
        if action in _COALESCED:
            key = _burst_key(action, actor, tenant, client_id, target, source, outcome, reason, detail=detail)
            with self._lock:
                burst = self._open.get(key)
                if burst is not None:
                    burst.add(self._clock(), detail or {})
                    return
        record = AuditRecord(
            id=secrets.token_hex(16),
            at=utcnow(self._clock),
            actor=_text(actor or "unknown", 255),
            action=_text(action, 64),
            tenant=tenant if tenant is None or validation.IDENTIFIER.fullmatch(tenant) else None,
            client_id=client_id if validation.is_client_id(client_id) else None,
            target=None if target is None else _text(target, 255),
            source=None if source is None else _text(source, 255),
            outcome=_text(outcome, 16),
            reason=None if reason is None else _text(reason, 1000),
            detail=clean_detail(detail),
        )
        with self._lock:
            if len(self._queue) >= max(1, self._settings.audit_queue_size):
                self._forget(self._queue.popleft())
            self._queue.append(record)
            if key is not None:  # another thread may have opened one meanwhile: this one replaces it
                self._open[key] = burst = _Burst()
                self._bursts[record.id] = (key, burst)
            self._start()

    def _forget(self, record: AuditRecord) -> None:
        """``record`` dropped from a full queue, with its burst (under ``self._lock``)."""
        key_burst = self._bursts.pop(record.id, None)
        self._dropped += 1 if key_burst is None else key_burst[1].count
        if key_burst is not None and self._open.get(key_burst[0]) is key_burst[1]:
            del self._open[key_burst[0]]

    def _merged(self, records: Sequence[AuditRecord], *, close: bool) -> list[AuditRecord]:
        """``records`` with each burst's count (under ``self._lock``); ``close``: later requests
        start new bursts (these are being written)."""
        merged = []
        for record in records:
            key_burst = self._bursts.get(record.id)
            if key_burst is None:
                merged.append(record)
                continue
            key, burst = key_burst
            if close and self._open.get(key) is burst:
                del self._open[key]
            merged.append(burst.merged(record))
        return merged

    def admin_action(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None,
        target: str | None,
        detail: Mapping[str, Any],
        source: str | None = None,
        client_id: str | None = None,
    ) -> None:
        """An admin's change: to the ``embedauth_admin_action`` hook, then to the trail (one place
        for both). ``client_id`` defaults to ``target`` for ``registration.*`` actions."""
        self._hook.embedauth_admin_action(
            actor=actor, action=action, tenant=tenant, target=target, detail=detail, source=source
        )
        if client_id is None and action.startswith("registration."):
            client_id = target
        self.record(
            actor=actor,
            action=action,
            tenant=tenant,
            client_id=client_id,
            target=target,
            source=source,
            detail=detail,
        )

    # ------------------------------------------------------------------ reading

    def list(
        self,
        tenant: str | Collection[str] | None = None,
        *,
        client_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        """Stored records, newest first: a tenant's, any of several tenants', or (None) all of them;
        only ``client_id``'s, only those at or after ``since``. Queued ones are not yet there
        (:meth:`flush` first to see them)."""
        if isinstance(tenant, str):
            tenants: str | frozenset[str] | None = validation.parse_identifier(tenant, "tenant")
        elif tenant is not None:
            tenants = frozenset(validation.parse_identifier(t, "tenant") for t in tenant)
        else:
            tenants = None
        if not isinstance(offset, int) or not 0 <= offset <= MAX_AUDIT_OFFSET:
            raise InvalidInput(f"offset must be between 0 and {MAX_AUDIT_OFFSET}", field="offset")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_AUDIT_PAGE}", field="limit")
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise InvalidInput("since must be a timezone-aware date and time", field="since")
        if client_id is not None and not validation.is_client_id(client_id):
            return Page(items=[], total=0, offset=offset, limit=limit)  # nothing such is stored
        return self._storage.list_audit_records(
            tenants, client_id=client_id, since=since, offset=offset, limit=limit
        )

    # ------------------------------------------------------------------ writing behind

    def _start(self) -> None:
        """The writer thread, started by the first record (under ``self._lock``)."""
        if self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(target=self._run, name="embedauth-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._settings.audit_flush_interval)
            self._wake.clear()
            try:
                self.flush()
                if self._clock() - self._last_prune >= PRUNE_INTERVAL:
                    self.prune()
            except EmbedAuthError as exc:  # storage down: the records wait, bounded, for the next try
                log.warning("embedauth: audit records not written yet: %s", exc)

    def flush(self) -> int:
        """Write every queued record now (and announce each to the ``embedauth_audit_record``
        hook); return how many were written. Storage errors propagate, the records stay queued."""
        with self._flushing:
            with self._lock:
                queued = list(self._queue)
                batch = self._merged(queued, close=True)
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning("embedauth: %d audit records were dropped (the queue was full)", dropped)
                batch.append(
                    AuditRecord(
                        id=secrets.token_hex(16),
                        at=utcnow(self._clock),
                        actor="embedauth",
                        action="audit.dropped",
                        outcome="failed",
                        reason="the audit queue was full (storage down or too slow)",
                        detail={"count": dropped},
                    )
                )
            if not batch:
                return 0
            try:
                self._storage.add_audit_records(batch)
            except BaseException:
                with self._lock:
                    self._dropped += dropped
                raise
            written = {record.id for record in queued}
            with self._lock:
                while self._queue and self._queue[0].id in written:
                    self._bursts.pop(self._queue.popleft().id, None)
            for record in batch:
                try:
                    self._hook.embedauth_audit_record(record=record)
                except Exception:  # a sink's failure is its own; the record is stored
                    log.exception("embedauth: an embedauth_audit_record hook failed")
            return len(batch)

    def prune(self) -> int:
        """Delete records older than ``audit_retention_days`` and beyond ``audit_max_records``."""
        self._last_prune = self._clock()
        before = utcnow(self._clock) - timedelta(days=self._settings.audit_retention_days)
        return self._storage.prune_audit_records(before=before, keep=self._settings.audit_max_records)

    def close(self) -> None:
        """Stop the writer and write what is queued (best effort: a storage error is logged)."""
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self._settings.storage_timeout * 2 + 1)
        try:
            self.flush()
        except EmbedAuthError as exc:
            log.error("embedauth: audit records lost at close: %s", exc)

    def pending(self) -> builtins.list[AuditRecord]:
        """The records queued and not yet written (a copy)."""
        with self._lock:
            return self._merged(self._queue, close=False)
