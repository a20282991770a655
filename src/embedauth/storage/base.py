"""The storage contract: what every backend stores, and which writes must be atomic.

Backends only store. They validate nothing a service already validated, make no policy decisions,
and never see a plaintext secret. Every method is synchronous and thread-safe. A driver's own
exception never escapes: every public method of a backend (and its constructor) is wrapped, when the
subclass is defined, so that an exception listed in its :attr:`Storage.driver_errors` becomes
:class:`~embedauth.errors.StorageError` ``from`` it. A backend cannot forget the translation, and
writes none of it by hand (the pattern of ``limits``' ``Storage.__init_subclass__``). The behaviour
below is checked, for every backend against a real server, by ``tests/storage/test_contract.py``.

Atomicity that every backend guarantees:

* ``save_registration`` is a compare-and-set on ``version``: of two writers that read the same
  version, exactly one succeeds. Secret rotation, secret limits and certificate changes rely on it.
* A registration only ever holds permissions that exist, and ``remove_permission`` never succeeds
  while a registration holds the permission, however the two race.
* ``consume_once`` returns True exactly once per key until the key's expiry.
* ``add_revocation`` assigns strictly increasing ``seq`` numbers, and entries become visible in
  ``seq`` order (a reader that has seen ``seq`` n never later finds an entry below n), unless the
  store itself goes back (restored from a backup, failed over to a replica that was behind, restarted
  without persistence); readers detect that by :meth:`Storage.revocation_head` and reload.
* ``raise_max_token_age`` only ever raises the stored value, whoever calls it at once.
* ``record_use`` only moves ``last_used_at`` (the registration's and the credential's) forward,
  and ``save_registration`` never writes either: a save racing a use loses neither.

The audit trail (:meth:`Storage.add_audit_records`) is append-only: records are never changed,
only pruned (:meth:`Storage.prune_audit_records`: older than a time, or beyond a count), and listed
newest first, ``(at, id)`` descending (:func:`audit_page` is the reference).

Listings have one total order on every backend: :meth:`Storage.list_registrations` sorts by
``(key, created_at, client_id)`` (see :data:`RegistrationSort`), so pages cut with ``offset`` and
``limit`` are consecutive slices of it. :func:`registration_page` is that listing over registrations
in hand (memory, Redis); SQL backends express the same order in ``ORDER BY``.

Every network backend has connect and read timeouts (``storage_timeout``): a server that hangs
is a ``StorageError`` within them, never a wait without end; and once a call found the server
down, the following calls fail at once for a moment (the outage gate), so that requests never
queue behind one another's timeouts.

Times are compared at millisecond resolution, the precision every model carries.
"""

from __future__ import annotations

import abc
import functools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar, get_args

from embedauth.blocking import may_block
from embedauth.clock import Clock
from embedauth.errors import EmbedAuthError, StorageError
from embedauth.models import (
    App,
    AuditRecord,
    Connection,
    Page,
    Permission,
    RefreshToken,
    Registration,
    Revocation,
    RevocationHead,
    SigningKey,
)
from embedauth.storage.feed import ChangeFeed

__all__ = [
    "DEFAULT_TIMEOUT",
    "REGISTRATION_SORTS",
    "SCHEMA_VERSION",
    "RegistrationSort",
    "Storage",
    "StorageFactory",
    "audit_page",
    "registration_page",
    "registration_sort_key",
    "wanted_tenants",
]

#: The version of the stored layout this code reads and writes; backends migrate older data to it.
SCHEMA_VERSION = 5
#: Seconds a backend waits to connect, and for any one answer, unless told otherwise.
DEFAULT_TIMEOUT = 3.0

RegistrationSort = Literal["created_at", "name", "last_used_at", "expires_at", "enabled"]
"""What :meth:`Storage.list_registrations` sorts by; ties then by ``created_at``, then ``client_id``.

``created_at``; ``name`` folded with ``str.lower()`` (SQL ``lower()``), compared by code point;
``last_used_at`` with never used (None) before every time; ``expires_at``, the effective expiry
(:attr:`~embedauth.models.Registration.expires_at`), with never (None) after every time; ``enabled``
False before True. ``descending`` reverses the whole order, tie-breakers included.
"""
#: Every :data:`RegistrationSort` key.
REGISTRATION_SORTS: tuple[RegistrationSort, ...] = get_args(RegistrationSort)

_F = TypeVar("_F", bound=Callable[..., Any])


class _OutageGate:
    """Fail fast while storage is known to be down, so that requests do not queue behind timeouts.

    After an outage error (the server refused, dropped or did not answer within the timeout), every
    call fails at once with ``StorageError`` for :data:`OUTAGE_BACKOFF` seconds; then one call (the
    probe) goes through while the others still fail fast; its success closes the gate, its failure
    keeps it shut for another backoff. Without it, a hung server costs every request a full timeout,
    and a pool of workers stuck in those waits makes even the fast paths queue.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._probing = False
        self._depth = threading.local()

    def enter(self) -> bool:
        """Whether this outermost call may reach the server (nested calls always may)."""
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        if depth or not self._down_until:
            return True
        with self._lock:
            if time.monotonic() < self._down_until or self._probing:
                return False
            self._probing = True
            return True

    def leave(self, outage: bool | None) -> None:
        """After the call: ``outage`` True (it failed for lack of a server), False (it reached one),
        None (it was refused at the gate)."""
        self._depth.value -= 1
        if self._depth.value or outage is None:
            return
        with self._lock:
            self._probing = False
            self._down_until = time.monotonic() + OUTAGE_BACKOFF if outage else 0.0


#: Seconds every call fails fast after storage was found down, before one call tries again.
OUTAGE_BACKOFF = 1.0


def _translating(method: _F, *, gated: bool) -> _F:
    """``method`` with the driver's errors turned into ``StorageError``, ours passing through, and,
    if ``gated``, refused at once while the server is known to be down (:class:`_OutageGate`)."""

    @functools.wraps(method)
    def translated(self: Storage, *args: Any, **kwargs: Any) -> Any:
        may_block("storage")
        if not gated:
            return _call(self, method, args, kwargs)
        gate = self._gate
        if not gate.enter():
            gate.leave(None)
            raise StorageError(f"{type(self).__name__}: unreachable a moment ago; trying again shortly")
        outage = False
        try:
            return _call(self, method, args, kwargs)
        except StorageError as exc:
            outage = exc.__cause__ is not None and self.is_outage(exc.__cause__)
            raise
        finally:
            gate.leave(outage)

    translated.__embedauth_translated__ = True  # type: ignore[attr-defined]
    return translated  # type: ignore[return-value]


def _call(storage: Storage, method: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    try:
        return method(storage, *args, **kwargs)
    except EmbedAuthError:
        raise
    except type(storage).driver_errors as exc:
        raise StorageError(f"{type(storage).__name__}: {type(exc).__name__}: {exc}") from exc


class Storage(abc.ABC):
    """A backend. Constructed by :func:`embedauth.storage.open_storage` from a URL.

    ``clock`` is the instance's clock: backends use it wherever "now" matters (expiry of one-time
    keys and revocations), never the system time directly. ``timeout`` bounds, in seconds, every
    connection attempt and every wait for an answer (``storage_timeout``).
    """

    #: Exceptions of the driver that become ``StorageError`` wherever a backend method raises them.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    #: The driver's exceptions that mean the server is unreachable or hung (see :meth:`is_outage`).
    outage_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the subclass's constructor and every method of the contract it defines."""
        super().__init_subclass__(**kwargs)
        for name in (*_CONTRACT, "__init__"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__embedauth_translated__", False):
                # Constructing and closing never wait for a server that was down a moment ago.
                setattr(cls, name, _translating(method, gated=name not in ("__init__", "close")))

    def __init__(self, url: str, *, clock: Clock, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.clock = clock
        self.timeout = timeout
        self._gate = _OutageGate()

    def is_outage(self, error: BaseException) -> bool:
        """Whether a driver error means the server is unreachable, dropped us or hung (then calls
        fail fast for a moment), rather than a refusal of this one statement."""
        return isinstance(error, self.outage_errors)

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
        self,
        tenant: str | Collection[str] | None,
        *,
        name_contains: str | None = None,
        holding: str | None = None,
        expires_before: datetime | None = None,
        sort: RegistrationSort = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Registration]:
        """One page of registrations and ``total``, the count of every match.

        ``tenant``: one tenant's, any of several (an empty collection matches none), or every
        tenant's (None). Filters: a case-insensitive substring of the name; ``holding``, a
        permission held; ``expires_before``, an effective expiry
        (:attr:`~embedauth.models.Registration.expires_at`) before that time (never expiring: no).
        Ordered by ``(sort key, created_at, client_id)``, all reversed when ``descending``
        (:data:`RegistrationSort`; :func:`registration_sort_key` is the reference); ``ValueError``
        for an unknown ``sort``.
        """

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
    def record_use(self, client_id: str, at: datetime, *, credential_id: str | None = None) -> None:
        """Set ``last_used_at`` to ``at`` unless it is already later, and so for the registration's
        secret or certificate ``credential_id`` when given. Does not change ``version``. A missing
        registration or credential is ignored."""

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
        """Store an entry and return its ``seq``, greater than every ``seq`` before it.

        One entry is kept per ``(kind, subject)``: an existing one is merged with the new one
        (:meth:`~embedauth.models.Revocation.merged`) and takes the new ``seq``, atomically.
        """

    @abc.abstractmethod
    def revocations_after(self, seq: int) -> list[Revocation]:
        """Entries with ``seq`` greater than ``seq`` that have not expired, in ``seq`` order, each
        carrying its ``seq``. Expired entries are purged by the backend. An entry that cannot be
        read (damaged by hand, say) is skipped and logged, never a reason to stop."""

    @abc.abstractmethod
    def revocation_head(self) -> RevocationHead:
        """The log's epoch (created, random, when the log is empty and has none), last ``seq`` and
        the deployment's ``max_token_age`` (0 until an issuer has raised it)."""

    @abc.abstractmethod
    def raise_max_token_age(self, seconds: int) -> int:
        """Raise the stored ``max_token_age`` to at least ``seconds``, atomically; return it."""

    # ---------------------------------------------------------------- the audit trail

    @abc.abstractmethod
    def add_audit_records(self, records: Sequence[AuditRecord]) -> None:
        """Append the records (their ids are new; nothing is ever overwritten)."""

    @abc.abstractmethod
    def list_audit_records(
        self,
        tenant: str | Collection[str] | None,
        *,
        client_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        """One page of records, newest first (``at``, then ``id``, both descending), and ``total``.

        ``tenant``: one tenant's, any of several (an empty collection matches none), or (None)
        every record, those of no tenant included. ``client_id``: only those concerning it;
        ``since``: only those at or after it.
        """

    @abc.abstractmethod
    def prune_audit_records(self, *, before: datetime, keep: int) -> int:
        """Delete the records older than ``before``, then all but the newest ``keep``; return how
        many were deleted."""

    # ---------------------------------------------------------------- health

    @abc.abstractmethod
    def ping(self) -> None:
        """Reach the server once (within the backend's timeouts), or raise ``StorageError``."""

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
    def idle_refresh_tokens(self, before: datetime, *, limit: int = 500) -> list[RefreshToken]:
        """Up to ``limit`` unrevoked refresh tokens idle since before ``before`` (last used, or
        created when never used, strictly earlier), oldest first (idle time, then id)."""

    @abc.abstractmethod
    def save_refresh_token(self, token: RefreshToken) -> None:
        """Replace the stored token with the same id; ``RefreshTokenNotFound`` if absent.
        ``user`` and ``created_at`` never change."""

    # ---------------------------------------------------------------- apps and their connections

    @abc.abstractmethod
    def create_app(self, app: App) -> None:
        """Store a new app; ``AlreadyExists`` if the id is taken."""

    @abc.abstractmethod
    def get_app(self, app_id: str) -> App | None:
        """The app, or None."""

    @abc.abstractmethod
    def list_apps(self, owners: Collection[str] | None = None) -> list[App]:
        """The apps these tenants own (every app: ``None``), by ``(created_at, app_id)``."""

    @abc.abstractmethod
    def save_app(self, app: App, *, expected_version: int) -> bool:
        """Replace the app if its stored version is ``expected_version`` (a compare-and-set, as
        :meth:`save_registration`); False if it changed meanwhile, ``AppNotFound`` if absent."""

    @abc.abstractmethod
    def delete_app(self, app_id: str) -> bool:
        """Delete the app and its connections' records (not their registrations); False if absent."""

    @abc.abstractmethod
    def add_connection(self, connection: Connection) -> bool:
        """Record a tenant's connection of an app; False if that tenant has one already. Of two
        at once for one app and tenant, exactly one succeeds. ``AppNotFound`` or
        ``RegistrationNotFound`` if the app or the connection's registration does not exist.

        A connection lives as long as its registration: once that is deleted the connection is
        never listed again and does not stand in the way of a new one."""

    @abc.abstractmethod
    def list_connections(
        self, *, app_id: str | None = None, tenants: Collection[str] | None = None
    ) -> list[Connection]:
        """The connections of ``app_id`` (any app: ``None``) by these tenants (any: ``None``), by
        ``(created_at, app_id, tenant)``."""


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def registration_sort_key(sort: RegistrationSort) -> Callable[[Registration], tuple[Any, ...]]:
    """The key of the listing order for ``sort`` (``ValueError`` for an unknown one): the reference
    for every backend (``tests/storage/test_contract.py`` holds each one to it)."""
    if sort not in REGISTRATION_SORTS:
        raise ValueError(f"cannot sort registrations by {sort!r}; one of {', '.join(REGISTRATION_SORTS)}")

    def key(r: Registration) -> tuple[Any, ...]:
        head: tuple[Any, ...]
        if sort == "name":
            head = (r.name.lower(),)
        elif sort == "last_used_at":
            head = (r.last_used_at is not None, r.last_used_at or _EARLIEST)
        elif sort == "expires_at":
            expires = r.expires_at
            head = (expires is None, expires or _EARLIEST)
        elif sort == "enabled":
            head = (r.enabled,)
        else:
            head = ()
        return (*head, r.created_at, r.client_id)

    return key


def wanted_tenants(tenant: str | Collection[str] | None) -> frozenset[str] | None:
    """The tenants a listing matches: None for every tenant, else a set (empty: none matches)."""
    if tenant is None:
        return None
    if isinstance(tenant, str):
        return frozenset((tenant,))
    return frozenset(tenant)


def registration_page(
    registrations: Iterable[Registration],
    tenant: str | Collection[str] | None,
    *,
    name_contains: str | None = None,
    holding: str | None = None,
    expires_before: datetime | None = None,
    sort: RegistrationSort = "created_at",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> Page[Registration]:
    """:meth:`Storage.list_registrations` over registrations in hand: filtered, sorted, one page."""
    key = registration_sort_key(sort)
    tenants = wanted_tenants(tenant)
    needle = name_contains.lower() if name_contains else None
    found = [
        r
        for r in registrations
        if (tenants is None or r.tenant in tenants)
        and (holding is None or holding in r.scopes)
        and (needle is None or needle in r.name.lower())
        and (expires_before is None or _expires_before(r, expires_before))
    ]
    found.sort(key=key, reverse=descending)
    return Page(items=found[offset : offset + limit], total=len(found), offset=offset, limit=limit)


def _expires_before(r: Registration, moment: datetime) -> bool:
    expires = r.expires_at
    return expires is not None and expires < moment


def audit_page(
    records: Iterable[AuditRecord],
    tenant: str | Collection[str] | None,
    *,
    client_id: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[AuditRecord]:
    """:meth:`Storage.list_audit_records` over records in hand: filtered, newest first, one page."""
    tenants = wanted_tenants(tenant)
    found = [
        r
        for r in records
        if (tenants is None or r.tenant in tenants)
        and (client_id is None or r.client_id == client_id)
        and (since is None or r.at >= since)
    ]
    found.sort(key=lambda r: (r.at, r.id), reverse=True)
    return Page(items=found[offset : offset + limit], total=len(found), offset=offset, limit=limit)


StorageFactory = Callable[[str, Clock, float], Storage]
"""Builds a backend from its URL, the instance's clock and the timeout (what a scheme hook returns)."""


#: The public methods of the contract: each is wrapped in every backend (see the module docstring).
_CONTRACT = tuple(
    name
    for name, value in vars(Storage).items()
    if callable(value) and not name.startswith("_") and name != "is_outage"
)
