"""The expiry sweep: notices 30 days before, 7 days before and at expiry, once per deployment.

``auth.lifecycle.sweep()`` (and ``embedauth notify``; ``serve`` runs it every ``sweep_interval``
seconds when set) looks at every enabled registration: each secret and certificate, and the
registration's own expiry, has three thresholds, ``expires_at - 30 days``, ``expires_at - 7 days``
and ``expires_at``. A threshold is crossed when the sweep's clock is at or past it (a millisecond
earlier it is not). For each credential the sweep sends the most severe threshold crossed, if it
was not sent before:

* **Once per deployment.** A notice is claimed with ``consume_once("notice:<client id>:<credential
  id>:<expiry ms>:<threshold>")`` before it is delivered: of any number of processes sweeping at
  once, exactly one wins the claim and delivers; the others skip it. Delivery is therefore at most
  once: a hook that fails after the claim is logged and audited (``outcome`` ``failed``), not
  retried.
* **In order, the most severe only.** Thresholds are claimed one by one as they are crossed; a sweep
  after a long gap (or a credential created 5 days before its expiry) sends only the most severe
  pending one (the 7-day notice, not the 30-day one as well), since the milder one would arrive
  after it. An expired notice is sent only within :data:`EXPIRED_NOTICE_WINDOW` of the expiry, so
  that a first sweep over old data does not announce every expiry of the past.
* **Renewed or replaced, silenced.** The expiry is part of the claim, so a registration renewed
  to a later date starts afresh with the new date's thresholds, and its old ones are never due
  again. A credential stops getting notices once it is gone (rotated away, deleted), once a secret
  was replaced with a grace period (``replaced_at``: the admin chose its end), and once a newer
  credential of the same kind ends later (the admin already replaced it; its last use shows whether
  the old one is still in use). A credential that would outlive the registration's own expiry gets
  none: the registration's notice comes first.
* **Never for a disabled or deleted registration**: checked on the listing and again, from
  storage, just before the claim.

Each notice goes to ``embedauth_credential_expiring(registration, credential, days_left,
expires_at)`` or ``embedauth_credential_expired(registration, credential, expires_at)``
(``credential`` None for the registration's own expiry) and becomes an audit record
(``notice.expiring`` / ``notice.expired``), which is how the admin page lists the notices sent to
a registration. These hooks used to fire when a credential was *used* near its expiry, once per
process; the sweep replaces that: a credential nobody uses is the one most likely to be forgotten.

The sweep also revokes people's refresh tokens idle longer than ``refresh_token_idle_days``
(refused on use already) and prunes the audit trail. It reads every registration, page by page:
its cost grows with their number, so run it every few minutes or hours, not every second.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import pluggy

from embedauth.clock import Clock, isoformat, utcnow
from embedauth.config import Settings
from embedauth.errors import EmbedAuthError
from embedauth.models import CertificateCredential, RefreshToken, Registration, SecretCredential
from embedauth.registry.audit import Audit
from embedauth.registry.refresh_tokens import RefreshTokens
from embedauth.registry.registrations import MAX_PAGE, Registrations
from embedauth.storage.base import Storage

__all__ = [
    "ACTOR",
    "EXPIRED_NOTICE_WINDOW",
    "THRESHOLDS",
    "Lifecycle",
    "Notice",
    "SweepResult",
    "notice_document",
]

log = logging.getLogger(__name__)

#: Days before the expiry at which a notice is due; 0 is the expiry itself.
THRESHOLDS = (30, 7, 0)
#: How long after an expiry its "expired" notice may still be sent.
EXPIRED_NOTICE_WINDOW = timedelta(days=30)
#: Who the audit trail says sent a notice or revoked an idle refresh token.
ACTOR = "embedauth:sweep"
_DAY = timedelta(days=1)

Credential = SecretCredential | CertificateCredential


def _kind(credential: Credential | None) -> Literal["secret", "certificate", "registration"]:
    if credential is None:
        return "registration"
    return "secret" if isinstance(credential, SecretCredential) else "certificate"


def notice_document(
    registration: Registration,
    credential: Credential | None,
    expires_at: datetime,
    days_left: int | None,
    at: datetime,
) -> dict[str, Any]:
    """A notice as JSON: what the built-in notices plugin writes, one line each (nothing secret)."""
    return {
        "notice": "credential.expired" if days_left is None else "credential.expiring",
        "at": isoformat(at),
        "tenant": registration.tenant,
        "client_id": registration.client_id,
        "name": registration.name,
        "credential": _kind(credential),
        "credential_id": None if credential is None else credential.id,
        "expires_at": isoformat(expires_at),
        "days_left": days_left,
    }


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice a sweep sent: for which registration and credential (None: the registration's
    own expiry), the exact expiry, the threshold crossed (30, 7, or 0: expired) and the whole days
    left, rounded up (0 once expired)."""

    registration: Registration
    credential: Credential | None
    expires_at: datetime
    threshold: int
    days_left: int
    delivered: bool = True

    @property
    def expired(self) -> bool:
        """Whether it says "expired" (rather than "expiring")."""
        return self.threshold == 0

    def to_json(self, at: datetime) -> dict[str, Any]:
        """The notice's JSON (:func:`notice_document`) as of ``at``."""
        days = None if self.expired else self.days_left
        return notice_document(self.registration, self.credential, self.expires_at, days, at) | {
            "delivered": self.delivered
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did: the notices it sent (``delivered`` False where a hook failed), the
    refresh tokens it revoked, the audit records it pruned, and the registrations it looked at."""

    at: datetime
    notices: list[Notice] = field(default_factory=list)
    refresh_tokens_revoked: list[RefreshToken] = field(default_factory=list)
    audit_records_pruned: int = 0
    registrations_checked: int = 0


class Lifecycle:
    """``auth.lifecycle``: the expiry sweep, once or every ``sweep_interval`` seconds."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        plugins: pluggy.PluginManager,
        *,
        registrations: Registrations,
        refresh_tokens: RefreshTokens,
        audit: Audit,
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._hook = plugins.hook
        self._registrations = registrations
        self._refresh_tokens = refresh_tokens
        self._audit = audit
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ what is due

    @staticmethod
    def threshold(expires_at: datetime, now: datetime) -> int | None:
        """The most severe threshold crossed at ``now`` (30, 7, 0), or None (none yet, or an expiry
        longer ago than :data:`EXPIRED_NOTICE_WINDOW`)."""
        if now >= expires_at:
            return 0 if now - expires_at <= EXPIRED_NOTICE_WINDOW else None
        return next((t for t in THRESHOLDS[:-1][::-1] if now >= expires_at - t * _DAY), None)

    def due(self, registration: Registration, now: datetime) -> list[tuple[Credential | None, datetime, int]]:
        """The notices ``registration`` has due at ``now`` (claimed or not): each credential (None:
        the registration itself), its expiry and the threshold crossed. None for a disabled one."""
        if not registration.enabled:
            return []
        own_end = registration.registration_expires_at
        subjects: list[tuple[Credential | None, datetime]] = [
            (c, c.expires_at)
            for c in registration.credentials()
            if not _silenced(c, registration, now) and (own_end is None or c.expires_at < own_end)
        ]
        if own_end is not None:
            subjects.append((None, own_end))
        found = []
        for credential, expires_at in subjects:
            threshold = self.threshold(expires_at, now)
            if threshold is not None:
                found.append((credential, expires_at, threshold))
        return found

    # ------------------------------------------------------------------ the sweep

    def sweep(self) -> SweepResult:
        """One sweep: every notice due and not yet sent by any process, the idle refresh tokens
        revoked, the audit trail pruned. The notices' audit records are written before it returns."""
        now = utcnow(self._clock)
        notices: list[Notice] = []
        checked = offset = 0
        while True:
            page = self._registrations.list(None, offset=offset, limit=MAX_PAGE)
            for registration in page.items:
                checked += 1
                for credential, expires_at, threshold in self.due(registration, now):
                    notice = self._send(registration, credential, expires_at, threshold, now)
                    if notice is not None:
                        notices.append(notice)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        revoked: list[RefreshToken] = []
        while batch := self._refresh_tokens.revoke_idle(limit=MAX_PAGE):
            for token in batch:
                self._audit.record(
                    actor=ACTOR,
                    action="refresh_token.revoke",
                    tenant=token.tenant,
                    target=token.id,
                    source="sweep",
                    reason=f"unused for more than {self._settings.refresh_token_idle_days} days",
                    detail={"user": token.user, "idle_since": token.idle_since()},
                )
            revoked += batch
            if len(batch) < MAX_PAGE:
                break
        pruned = self._audit.prune()
        try:
            self._audit.flush()
        except EmbedAuthError as exc:  # they stay queued for the writer thread
            log.warning("embedauth: the sweep's audit records are not written yet: %s", exc)
        return SweepResult(now, notices, revoked, pruned, checked)

    def _send(
        self,
        registration: Registration,
        credential: Credential | None,
        expires_at: datetime,
        threshold: int,
        now: datetime,
    ) -> Notice | None:
        """Claim the notice, then deliver it; None when it is not (or no longer) due here."""
        current = self._storage.get_registration(registration.client_id)
        if current is None or not any(
            (c is None and credential is None)
            or (c is not None and credential is not None and c.id == credential.id)
            for c, end, t in self.due(current, now)
            if end == expires_at and t == threshold
        ):
            return None  # disabled, deleted, renewed or replaced since the listing
        key = ":".join(
            (
                "notice",
                registration.client_id,
                "registration" if credential is None else credential.id,
                str(int(expires_at.timestamp() * 1000)),
                str(threshold),
            )
        )
        if not self._storage.consume_once(key, expires_at + EXPIRED_NOTICE_WINDOW + _DAY):
            return None  # another sweep, here or elsewhere, sent it
        days_left = max(0, math.ceil((expires_at - now) / _DAY))
        reason = None
        try:
            if threshold:
                self._hook.embedauth_credential_expiring(
                    registration=current, credential=credential, days_left=days_left, expires_at=expires_at
                )
            else:
                self._hook.embedauth_credential_expired(
                    registration=current, credential=credential, expires_at=expires_at
                )
        except Exception as exc:
            log.exception("embedauth: an expiry notice hook failed for %s", registration.client_id)
            reason = f"a notice hook raised {type(exc).__name__}"
        self._audit.record(
            actor=ACTOR,
            action="notice.expired" if not threshold else "notice.expiring",
            tenant=current.tenant,
            client_id=current.client_id,
            target=None if credential is None else credential.id,
            source="sweep",
            outcome="success" if reason is None else "failed",
            reason=reason,
            detail={
                "credential": _kind(credential),
                "credential_id": None if credential is None else credential.id,
                "expires_at": expires_at,
                "threshold_days": threshold,
                "days_left": days_left,
            },
        )
        return Notice(current, credential, expires_at, threshold, days_left, delivered=reason is None)

    # ------------------------------------------------------------------ in the background

    def start(self, interval: float | None = None) -> None:
        """Sweep every ``interval`` seconds (default ``sweep_interval``) in a thread, from now until
        :meth:`stop`; nothing when the interval is 0."""
        every = self._settings.sweep_interval if interval is None else interval
        if every <= 0 or self._thread is not None:
            return
        self._stopped.clear()

        def run() -> None:
            while not self._stopped.is_set():
                try:
                    self.sweep()
                except Exception:
                    log.exception("embedauth: the expiry sweep failed")
                self._stopped.wait(every)

        self._thread = threading.Thread(target=run, name="embedauth-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background sweeps (the one running finishes)."""
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._settings.storage_timeout * 4 + 1)


def _silenced(credential: Credential, registration: Registration, now: datetime) -> bool:
    """Whether ``credential`` gets no notices: replaced with a grace period, or superseded by a
    newer credential of the same kind that ends later and has not expired."""
    if isinstance(credential, SecretCredential) and credential.replaced_at is not None:
        return True
    same_kind = (
        registration.secrets if isinstance(credential, SecretCredential) else registration.certificates
    )
    return any(
        other.id != credential.id
        and other.created_at > credential.created_at
        and other.expires_at > credential.expires_at
        and other.expires_at > now
        and not (isinstance(other, SecretCredential) and other.replaced_at is not None)
        for other in same_kind
    )
