"""``redis://`` and ``rediss://``: Redis (or a Redis Cluster) through redis-py's sync client.

URL: ``redis://[user:password@]host:port/db?prefix=myapp`` — ``prefix`` (default ``embedauth``) starts
every key; the other query parameters go to :meth:`redis.Redis.from_url`.

Key layout (``P`` = prefix; ``{…}`` is a Redis Cluster hash tag: keys with the same tag share a slot,
and every multi-key script below touches one tag only)::

    P:schema                      string  layout version (SET NX on first open)
    P:{catalog}:permissions       hash    name -> permission JSON
    P:{catalog}:holders           hash    name -> how many registrations hold it
    P:{r:<client_id>}             hash    doc (registration JSON), version, used (last_used_at ms),
                                          used:<credential id> (that credential's last use, ms)
    P:{t:<tenant>}:registrations  zset    client_id, scored by created_at ms
    P:once:<key>                  string  expiry ms, with a PX TTL so Redis collects it
    P:{registrations}             zset    every client_id, scored by created_at ms
    P:{rev}:seq                   string  the revocation counter (INCR)
    P:{rev}:epoch                 string  random, set when the log has none (a new or emptied store)
    P:{rev}:max_age               string  the deployment's max_token_age, only ever raised
    P:{rev}:log                   zset    revocation JSON (with its seq), scored by seq
    P:{rev}:expiry                zset    the same members, scored by expires ms
    P:{rev}:index                 hash    kind:subject -> its member (one entry per kind and subject)
    P:{keys}:signing              hash    kid -> signing key JSON
    P:{rt:<token_id>}             string  refresh token JSON
    P:{rtu:<user>}:tokens         zset    token id, scored by created_at ms
    P:{refresh_tokens}            zset    every refresh token id, scored by created_at ms
    P:{audit}:records             hash    audit record id -> record JSON
    P:{audit}:all                 zset    every record id, scored by its time (ms)
    P:{audit}:t:<tenant>          zset    the tenant's record ids (t/ ... the same per tenant and
    P:{audit}:c:<client_id>       zset    client; tc:<tenant>/<client_id> both), scored alike
    P:{app:<app_id>}              string  app JSON (its version inside)
    P:{app:<app_id>}:connections  hash    tenant -> connection JSON
    P:{apps}                      zset    every app_id, scored by created_at ms
    P:revocations                 channel pub/sub: every add_revocation publishes its seq here

Times are stored in whole milliseconds, like the JSON of :mod:`embedauth.storage.codec`. A prefix with
a hash tag of its own (``app{1}``) puts every key in one slot: legal, just not spread.

Atomicity (Lua scripts in ``lua/``, loaded once; "now" is always the storage clock's, passed in, never Redis's own time):

* A registration is one hash, so the compare-and-set on ``version`` is a single-key script, and
  ``last_used_at`` lives in its own field that ``save_registration`` never writes.
* The catalog and its holder counts share a slot. Before a registration is written, one script checks
  that every scope exists and counts it as held (or changes nothing and names the missing ones);
  ``remove_permission`` is a script that deletes only at a count of 0. After a write that failed, the
  counts taken are released; after one that succeeded (or a delete), the old scopes are released.
  A crash between the steps can only leave a count too high, never too low: such a permission cannot
  be removed (the safe side) until the counts are rebuilt from the registrations.
* Indexes (tenant -> registrations, user -> refresh tokens) live in other slots than the documents, so
  they are written in a separate step: the index first on create, the document first on delete.
  Listings load the documents and skip members whose document is gone or belongs elsewhere, so a
  crash leaves at most a dangling member, which is harmless. (Deleting and re-creating one client ID
  at the same moment, from two processes, could leave it unlisted; client IDs are random.) Listing a
  tenant loads all its registrations (several tenants: each one's index, merged): the filters, the
  order and the total are computed client-side, the effective expiry from the loaded model.
* The audit trail shares one slot (``{audit}``): a batch of records and its index entries are one
  MULTI/EXEC; pruning reads the ids past the bound from ``all`` and removes them everywhere. Ties in
  time are ordered by id, which Redis does for equal scores (byte order, as SQL's binary keys).
* An app and its connections share a slot: ``save_app`` and ``add_connection`` are WATCH/MULTI
  transactions over those two keys (one connection per app and tenant). A connection whose
  registration was deleted is left in place but never listed, and a new connection replaces it.
* ``add_revocation`` increments the counter, appends and publishes on ``P:revocations`` in one script
  (a subscriber is woken only once the entry is readable); ``revocations_after`` purges expired
  entries (by the ``expiry`` set) and reads, in one script.

Change feed (:meth:`RedisStorage.open_change_feed`): a :class:`RedisChangeFeed` holds its own
connection subscribed to ``P:revocations`` (channels are not keys: a prefix of its own per
deployment, or per test run, keeps feeds apart). Messages published while it is disconnected are lost,
which the feed reports as a ``StorageError``; the caller then re-reads by ``seq``.

Migrations: ``P:schema`` holds the layout version. :meth:`RedisStorage._migrate` runs while the
stored version is lower (holding a ``SET NX PX`` lock key), rewriting the keys it changes and then
setting ``P:schema``; a newer stored version than this code knows is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import secrets
import socket
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from embedauth.clock import Clock, from_timestamp
from embedauth.errors import (
    AlreadyExists,
    AppNotFound,
    ConfigurationError,
    NotFound,
    PermissionInUse,
    PermissionNotFound,
    RefreshTokenNotFound,
    RegistrationNotFound,
    StorageError,
    UnknownPermission,
)
from embedauth.models import (
    Access,
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
from embedauth.storage.base import (
    DEFAULT_TIMEOUT,
    SCHEMA_VERSION,
    RegistrationSort,
    Storage,
    registration_page,
    registration_sort_key,
    wanted_tenants,
)
from embedauth.storage.codec import (
    app_from_dict,
    app_to_dict,
    audit_record_from_dict,
    audit_record_to_dict,
    connection_from_dict,
    connection_to_dict,
    permission_from_dict,
    permission_to_dict,
    refresh_token_from_dict,
    refresh_token_to_dict,
    registration_from_dict,
    registration_to_dict,
    revocation_from_dict,
    revocation_to_dict,
    signing_key_from_dict,
    signing_key_to_dict,
)
from embedauth.storage.feed import ChangeFeed, ConnectionFeed

__all__ = ["RedisChangeFeed", "RedisStorage"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _lua(name: str) -> str:
    """The script ``lua/<name>.lua`` shipped with the package (each file says its KEYS and ARGV)."""
    return (resources.files("embedauth.storage") / "lua" / f"{name}.lua").read_text("utf-8")


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _scopes(scopes: Sequence[str]) -> list[str]:
    return sorted(set(scopes))


def _unknown(missing: Sequence[str]) -> UnknownPermission:
    return UnknownPermission(f"not in the permission catalog: {', '.join(sorted(missing))}")


def _connection_url(url: str) -> tuple[str, str]:
    """The URL for redis-py (without ``prefix``) and the prefix."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    prefix = prefixes[-1] if prefixes else "embedauth"
    if not prefix:
        raise ConfigurationError("redis storage URL: prefix must not be empty")
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


#: The driver's errors and the socket's (the built-in ConnectionError is an OSError).
_FEED_ERRORS = (redis.RedisError, OSError)
#: TCP keepalives on the feed connection: a server that vanished without closing it is noticed within
#: about a minute (where the platform has the options).
_FEED_KEEPALIVE = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


class RedisChangeFeed(ConnectionFeed):
    """Redis pub/sub on the storage's revocation channel, over a connection of its own."""

    errors = _FEED_ERRORS

    def __init__(self, connection_url: str, channel: str, *, timeout: float) -> None:
        self._url = connection_url
        self._channel = channel
        self._timeout = timeout
        #: The feed connection's CLIENT SETNAME (unless the URL sets ``client_name``), for CLIENT LIST.
        self.client_name = f"embedauth-feed-{secrets.token_hex(4)}"
        self._client: redis.Redis | None = None
        self._pubsub: Any = None  # a redis.client.PubSub (not typed by redis-py)
        super().__init__()

    def _connect(self) -> None:
        """Subscribe; return once Redis has confirmed the subscription."""
        self._client = redis.Redis.from_url(
            self._url,
            client_name=self.client_name,
            retry=Retry(NoBackoff(), 0),  # no silent reconnect: it may have lost messages
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            socket_keepalive=True,
            socket_keepalive_options=_FEED_KEEPALIVE,
        )
        self._pubsub = self._client.pubsub()  # type: ignore[no-untyped-call,unused-ignore]  # typed in newer redis-py
        self._pubsub.subscribe(self._channel)
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StorageError("RedisChangeFeed: SUBSCRIBE was not confirmed")
            message = self._pubsub.get_message(timeout=min(remaining, self.SLICE))
            if message is not None and message["type"] == "subscribe":
                return

    def _connected(self) -> bool:
        return self._pubsub is not None

    def _disconnect(self) -> None:
        pubsub, client, self._pubsub, self._client = self._pubsub, self._client, None, None
        if pubsub is not None:
            with contextlib.suppress(*_FEED_ERRORS):
                pubsub.close()
        if client is not None:
            with contextlib.suppress(*_FEED_ERRORS):
                client.close()

    def _next(self, timeout: float) -> bool:
        message = self._pubsub.get_message(timeout=timeout)
        return message is not None and message["type"] == "message"


class RedisStorage(Storage):
    """The ``redis://`` backend (see the module docstring for the key layout and atomicity)."""

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (redis.RedisError,)
    outage_errors: ClassVar[tuple[type[BaseException], ...]] = (redis.ConnectionError, redis.TimeoutError)

    def __init__(self, url: str, *, clock: Clock, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(url, clock=clock, timeout=timeout)
        connection_url, prefix = _connection_url(url)
        try:
            self._redis = redis.Redis.from_url(
                connection_url,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # One quick reconnect when a pooled connection was dropped (a restart); never a
                # retry after a timeout, so a server that hangs costs one timeout, not several.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid redis storage URL: {exc}") from exc
        self._prefix = prefix
        self._permissions = f"{prefix}:{{catalog}}:permissions"
        self._holders = f"{prefix}:{{catalog}}:holders"
        self._rev_seq = f"{prefix}:{{rev}}:seq"
        self._rev_log = f"{prefix}:{{rev}}:log"
        self._rev_expiry = f"{prefix}:{{rev}}:expiry"
        self._rev_index = f"{prefix}:{{rev}}:index"
        self._rev_head = [f"{prefix}:{{rev}}:epoch", self._rev_seq, f"{prefix}:{{rev}}:max_age"]
        self._all_registrations = f"{prefix}:{{registrations}}"
        self._rev_channel = f"{prefix}:revocations"
        self._connection_url = connection_url
        self._signing = f"{prefix}:{{keys}}:signing"
        self._all_refresh_tokens = f"{prefix}:{{refresh_tokens}}"
        self._audit = f"{prefix}:{{audit}}:"
        self._all_apps = f"{prefix}:{{apps}}"
        script = self._redis.register_script
        self._acquire_scopes = script(_lua("acquire_scopes"))
        self._release_scopes = script(_lua("release_scopes"))
        self._remove_permission = script(_lua("remove_permission"))
        self._create_registration = script(_lua("create_registration"))
        self._save_registration = script(_lua("save_registration"))
        self._record_use = script(_lua("record_use"))
        self._delete_registration = script(_lua("delete_registration"))
        self._consume_once = script(_lua("consume_once"))
        self._add_revocation = script(_lua("add_revocation"))
        self._revocations_after = script(_lua("revocations_after"))
        self._revocation_head = script(_lua("revocation_head"))
        self._raise_max_token_age = script(_lua("raise_max_token_age"))
        self._replace_field = script(_lua("replace_field"))
        self._closed = False
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Mark a new store with the current layout, migrate an older one, refuse a newer one."""
        self._redis.set(f"{self._prefix}:schema", SCHEMA_VERSION, nx=True)
        stored = self.schema_version()
        if stored > SCHEMA_VERSION:
            raise StorageError(f"stored layout {stored} is newer than this embedauth ({SCHEMA_VERSION})")
        if stored < SCHEMA_VERSION:
            self._migrate(stored)

    def _migrate(self, stored: int) -> None:
        """Version 1 to 2: the index of every registration (so that every tenant can be listed).
        Version 2 to 3 (SQL's stored effective expiry) changes nothing here: listings compute it
        from the loaded registrations; nor does 3 to 4 (apps: keys of their own). Version 4 to 5:
        the index of every refresh token (the sweep finds the idle ones); the audit trail and
        credentials' last uses start empty.

        Version 1's revocation entries are read as they are (see :mod:`embedauth.storage.codec`).
        One process migrates, holding a lock key; the others wait for the new version.
        """
        lock = f"{self._prefix}:migrating"
        deadline = time.monotonic() + 60
        while not self._redis.set(lock, "1", nx=True, px=60_000):
            if self.schema_version() >= SCHEMA_VERSION:
                return
            if time.monotonic() > deadline:
                raise StorageError("another process has been migrating this Redis store for a minute")
            time.sleep(0.1)
        try:
            if stored < 2:
                pattern = f"{self._prefix}:{{t:*}}:registrations"
                for tenant_key in self._redis.scan_iter(match=pattern, count=1000):
                    members: list[tuple[str, float]] = self._redis.zrange(tenant_key, 0, -1, withscores=True)  # type: ignore[assignment]
                    if members:
                        self._redis.zadd(self._all_registrations, dict(members))
                # A refresh token without scopes meant "every permission, as the catalog grows";
                # it now means what it says: such tokens keep the catalog's read permissions.
                readable = sorted(p.name for p in self.list_permissions() if p.access is Access.READ)
                for key in self._redis.scan_iter(match=f"{self._prefix}:{{rt:*}}", count=1000):
                    doc = self._redis.get(key)
                    if doc is not None and json.loads(doc).get("scopes") == []:
                        self._redis.set(key, _dump(json.loads(doc) | {"scopes": readable}), xx=True)
            if stored < 5:
                for key in self._redis.scan_iter(match=f"{self._prefix}:{{rt:*}}", count=1000):
                    doc = self._redis.get(key)
                    if doc is not None:
                        token = refresh_token_from_dict(json.loads(doc))
                        self._redis.zadd(self._all_refresh_tokens, {token.id: _ms(token.created_at)})
            self._redis.set(f"{self._prefix}:schema", SCHEMA_VERSION)
        finally:
            self._redis.delete(lock)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._redis.close()

    def open_change_feed(self) -> ChangeFeed | None:
        return RedisChangeFeed(self._connection_url, self._rev_channel, timeout=self.timeout)

    def schema_version(self) -> int:
        return int(self._redis.get(f"{self._prefix}:schema") or 0)

    def _now_ms(self) -> int:
        return _ms(from_timestamp(self.clock()))

    # ---------------------------------------------------------------- permission catalog

    def add_permission(self, permission: Permission) -> None:
        doc = _dump(permission_to_dict(permission))
        if not self._redis.hsetnx(self._permissions, permission.name, doc):
            raise AlreadyExists(f"permission {permission.name!r} already exists")

    def get_permission(self, name: str) -> Permission | None:
        doc = self._redis.hget(self._permissions, name)
        return None if doc is None else permission_from_dict(json.loads(doc))

    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        found = [permission_from_dict(json.loads(doc)) for doc in self._redis.hvals(self._permissions)]
        if contains:
            needle = contains.lower()
            found = [p for p in found if needle in p.name.lower() or needle in p.description.lower()]
        return sorted(found, key=lambda p: p.name)

    def remove_permission(self, name: str) -> None:
        held = int(self._remove_permission(keys=[self._permissions, self._holders], args=[name]))
        if held < 0:
            raise PermissionNotFound(f"no permission {name!r}")
        if held:
            raise PermissionInUse(f"permission {name!r} is held by {held} registration(s)")

    def _acquire(self, scopes: list[str]) -> list[str]:
        """Count ``scopes`` as held if all exist; else change nothing and return the missing ones."""
        if not scopes:
            return []
        return list(self._acquire_scopes(keys=[self._permissions, self._holders], args=scopes))

    def _release(self, scopes: list[str]) -> None:
        if scopes:
            self._release_scopes(keys=[self._holders], args=scopes)

    # ---------------------------------------------------------------- registrations

    def _registration_key(self, client_id: str) -> str:
        return f"{self._prefix}:{{r:{client_id}}}"

    def _tenant_key(self, tenant: str) -> str:
        return f"{self._prefix}:{{t:{tenant}}}:registrations"

    @staticmethod
    def _registration_doc(registration: Registration) -> str:
        """The document: last uses are fields of their own, written by ``record_use`` only."""
        unused = dataclasses.replace(
            registration,
            last_used_at=None,
            secrets=tuple(dataclasses.replace(s, last_used_at=None) for s in registration.secrets),
            certificates=tuple(dataclasses.replace(c, last_used_at=None) for c in registration.certificates),
        )
        return _dump(registration_to_dict(unused))

    @staticmethod
    def _load_registration(fields: dict[str, str]) -> Registration | None:
        """A registration from its hash (``doc``, ``used``, ``used:<id>``): the one reader of them."""
        doc = fields.get("doc")
        if doc is None:
            return None

        def used(field: str) -> datetime | None:
            value = fields.get(field)
            return None if value is None else _EPOCH + int(value) * _MS

        stored = registration_from_dict(json.loads(doc))
        return dataclasses.replace(
            stored,
            last_used_at=used("used"),
            secrets=tuple(dataclasses.replace(s, last_used_at=used(f"used:{s.id}")) for s in stored.secrets),
            certificates=tuple(
                dataclasses.replace(c, last_used_at=used(f"used:{c.id}")) for c in stored.certificates
            ),
        )

    def create_registration(self, registration: Registration) -> None:
        scopes, cid = _scopes(registration.scopes), registration.client_id
        used = "" if registration.last_used_at is None else str(_ms(registration.last_used_at))
        missing = self._acquire(scopes)
        if missing:
            raise _unknown(missing)
        indexes = (self._tenant_key(registration.tenant), self._all_registrations)
        indexed = [self._redis.zadd(index, {cid: _ms(registration.created_at)}, nx=True) for index in indexes]
        doc = self._registration_doc(registration)
        if not self._create_registration(
            keys=[self._registration_key(cid)], args=[doc, registration.version, used]
        ):
            for index, added in zip(indexes, indexed, strict=True):
                if added:
                    self._redis.zrem(index, cid)
            self._release(scopes)
            raise AlreadyExists(f"registration {cid} already exists")

    def get_registration(self, client_id: str) -> Registration | None:
        fields: dict[str, str] = self._redis.hgetall(self._registration_key(client_id))  # type: ignore[assignment]
        return self._load_registration(fields)

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
        registration_sort_key(sort)  # an unknown key is refused before any read
        tenants = wanted_tenants(tenant)
        indexes = (
            [self._all_registrations] if tenants is None else [self._tenant_key(t) for t in sorted(tenants)]
        )
        pipe = self._redis.pipeline(transaction=False)
        for index in indexes:
            pipe.zrange(index, 0, -1)
        ids = list(dict.fromkeys(str(cid) for members in pipe.execute() for cid in members))
        pipe = self._redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self._registration_key(cid))
        loaded = (self._load_registration(row) for row in pipe.execute())
        # A dangling index member (its document gone, or moved) is skipped: the filter checks the tenant.
        return registration_page(
            (r for r in loaded if r is not None),
            tenant,
            name_contains=name_contains,
            holding=holding,
            expires_before=expires_before,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        scopes, key = _scopes(registration.scopes), self._registration_key(registration.client_id)
        missing = self._acquire(scopes)
        if missing:
            # Report as the reference does: a missing or stale registration before the scopes.
            version = self._redis.hget(key, "version")
            if version is None:
                raise RegistrationNotFound(f"no registration {registration.client_id}")
            if int(version) != expected_version:
                return False
            raise _unknown(missing)
        doc = self._registration_doc(registration)
        held = [c.id for c in registration.credentials()]
        result = self._save_registration(
            keys=[key], args=[expected_version, doc, registration.version, *held]
        )
        if result[0] != 1:
            self._release(scopes)
            if result[0] < 0:
                raise RegistrationNotFound(f"no registration {registration.client_id}")
            return False
        self._release(_scopes(json.loads(result[1])["scopes"]))
        return True

    def record_use(self, client_id: str, at: datetime, *, credential_id: str | None = None) -> None:
        self._record_use(keys=[self._registration_key(client_id)], args=[_ms(at), credential_id or ""])

    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        deleted = []
        for cid in client_ids:
            doc = self._delete_registration(keys=[self._registration_key(cid)])
            if doc is None:
                continue
            stored = json.loads(doc)
            self._redis.zrem(self._tenant_key(stored["tenant"]), cid)
            self._redis.zrem(self._all_registrations, cid)
            self._release(_scopes(stored["scopes"]))
            deleted.append(cid)
        return deleted

    # ---------------------------------------------------------------- one-time keys

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        now_ms, until_ms = self._now_ms(), _ms(expires_at)
        return bool(
            self._consume_once(
                keys=[f"{self._prefix}:once:{key}"], args=[now_ms, until_ms, max(1, until_ms - now_ms)]
            )
        )

    # ---------------------------------------------------------------- revocations

    def add_revocation(self, revocation: Revocation) -> int:
        keys = [self._rev_seq, self._rev_log, self._rev_expiry, self._rev_index]
        return int(
            self._add_revocation(keys=keys, args=[_dump(revocation_to_dict(revocation)), self._rev_channel])
        )

    def revocations_after(self, seq: int) -> list[Revocation]:
        keys, now_ms = [self._rev_log, self._rev_expiry, self._rev_index], self._now_ms()
        return [
            entry
            for entry in map(_readable_revocation, self._revocations_after(keys=keys, args=[seq, now_ms]))
            if entry
        ]

    def revocation_head(self) -> RevocationHead:
        epoch, seq, max_age = self._revocation_head(keys=self._rev_head, args=[secrets.token_hex(8)])
        return RevocationHead(str(epoch), int(seq), int(max_age))

    def raise_max_token_age(self, seconds: int) -> int:
        return int(self._raise_max_token_age(keys=[self._rev_head[2]], args=[seconds]))

    # ---------------------------------------------------------------- the audit trail

    def _audit_indexes(self, tenant: str | None, client_id: str | None) -> list[str]:
        """The index keys a record of ``tenant`` and ``client_id`` is listed in (``all`` first)."""
        a = self._audit
        keys = [f"{a}all"]
        if tenant is not None:
            keys.append(f"{a}t:{tenant}")
        if client_id is not None:
            keys.append(f"{a}c:{client_id}")
            if tenant is not None:  # tenants cannot hold "/" (validation.IDENTIFIER)
                keys.append(f"{a}tc:{tenant}/{client_id}")
        return keys

    def add_audit_records(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        pipe = self._redis.pipeline(transaction=True)  # one slot: {audit}
        pipe.hset(f"{self._audit}records", mapping={r.id: _dump(audit_record_to_dict(r)) for r in records})
        for record in records:
            for index in self._audit_indexes(record.tenant, record.client_id):
                pipe.zadd(index, {record.id: _ms(record.at)})
        pipe.execute()

    def list_audit_records(
        self,
        tenant: str | Collection[str] | None,
        *,
        client_id: str | None = None,
        since: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditRecord]:
        a, tenants = self._audit, wanted_tenants(tenant)
        if tenants is None:
            indexes = [f"{a}c:{client_id}" if client_id is not None else f"{a}all"]
        elif client_id is not None:
            indexes = [f"{a}tc:{t}/{client_id}" for t in sorted(tenants)]
        else:
            indexes = [f"{a}t:{t}" for t in sorted(tenants)]
        low = "-inf" if since is None else str(_ms(since))
        pipe = self._redis.pipeline(transaction=False)
        for index in indexes:
            pipe.zrevrangebyscore(index, "+inf", low, start=0, num=offset + limit, withscores=True)
            pipe.zcount(index, low, "+inf")
        answers = pipe.execute()
        # Each index is newest first; a record is in one of them only (one tenant each).
        found = sorted(
            ((float(score), str(member)) for members in answers[0::2] for member, score in members),
            reverse=True,
        )[offset : offset + limit]
        total = sum(int(n) for n in answers[1::2])
        docs = self._redis.hmget(f"{a}records", [member for _, member in found]) if found else []
        items = [audit_record_from_dict(json.loads(doc)) for doc in docs if doc is not None]
        return Page(items=items, total=total, offset=offset, limit=limit)

    def prune_audit_records(self, *, before: datetime, keep: int) -> int:
        a, deleted = self._audit, 0
        while True:
            old = [
                str(m)
                for m in self._redis.zrangebyscore(f"{a}all", "-inf", f"({_ms(before)}", start=0, num=1000)
            ]
            excess = int(self._redis.zcard(f"{a}all")) - len(old) - max(keep, 0)
            if excess > 0:  # the oldest beyond the bound, after the old ones
                end = len(old) + min(excess, 1000) - 1
                old += [str(m) for m in self._redis.zrange(f"{a}all", len(old), end)]
            if not old:
                return deleted
            ids = list(dict.fromkeys(old))
            docs = self._redis.hmget(f"{a}records", ids)
            pipe = self._redis.pipeline(transaction=True)
            for record_id, doc in zip(ids, docs, strict=True):
                stored = json.loads(doc) if doc is not None else {}
                for index in self._audit_indexes(stored.get("tenant"), stored.get("client_id")):
                    pipe.zrem(index, record_id)
            pipe.hdel(f"{a}records", *ids)
            pipe.execute()
            deleted += sum(1 for doc in docs if doc is not None)

    # ---------------------------------------------------------------- health

    def ping(self) -> None:
        self._redis.ping()

    # ---------------------------------------------------------------- signing keys

    def add_signing_key(self, key: SigningKey) -> None:
        if not self._redis.hsetnx(self._signing, key.kid, _dump(signing_key_to_dict(key))):
            raise AlreadyExists(f"signing key {key.kid} already exists")

    def list_signing_keys(self) -> list[SigningKey]:
        found = [signing_key_from_dict(json.loads(doc)) for doc in self._redis.hvals(self._signing)]
        return sorted(found, key=lambda k: (k.created_at, k.kid))

    def save_signing_key(self, key: SigningKey) -> None:
        if not self._replace_field(keys=[self._signing], args=[key.kid, _dump(signing_key_to_dict(key))]):
            raise NotFound(f"no signing key {key.kid}")

    def delete_signing_key(self, kid: str) -> None:
        self._redis.hdel(self._signing, kid)

    # ---------------------------------------------------------------- refresh tokens

    def _token_key(self, token_id: str) -> str:
        return f"{self._prefix}:{{rt:{token_id}}}"

    def _user_key(self, user: str) -> str:
        return f"{self._prefix}:{{rtu:{user}}}:tokens"

    def add_refresh_token(self, token: RefreshToken) -> None:
        index = self._user_key(token.user)
        indexed = self._redis.zadd(index, {token.id: _ms(token.created_at)}, nx=True)
        every = self._redis.zadd(self._all_refresh_tokens, {token.id: _ms(token.created_at)}, nx=True)
        if not self._redis.set(self._token_key(token.id), _dump(refresh_token_to_dict(token)), nx=True):
            if indexed:
                self._redis.zrem(index, token.id)
            if every:
                self._redis.zrem(self._all_refresh_tokens, token.id)
            raise AlreadyExists(f"refresh token {token.id} already exists")

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        doc = self._redis.get(self._token_key(token_id))
        return None if doc is None else refresh_token_from_dict(json.loads(doc))

    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        ids = self._redis.zrange(self._user_key(user), 0, -1)
        pipe = self._redis.pipeline(transaction=False)
        for token_id in ids:
            pipe.get(self._token_key(str(token_id)))
        docs = pipe.execute()
        found = (refresh_token_from_dict(json.loads(doc)) for doc in docs if doc is not None)
        return [t for t in found if t.user == user]

    def record_refresh_token_use(self, token_id: str, at: datetime) -> None:
        # WATCH/MULTI on the one key (not Lua: Redis's cjson would rewrite an empty list as {}).
        key = self._token_key(token_id)

        def update(pipe: Any) -> None:
            doc = pipe.get(key)
            if doc is None:
                return
            token = refresh_token_from_dict(json.loads(doc))
            if token.last_used_at is not None and token.last_used_at >= at:
                return
            pipe.multi()
            pipe.set(key, _dump(refresh_token_to_dict(dataclasses.replace(token, last_used_at=at))), xx=True)

        self._redis.transaction(update, key)

    def idle_refresh_tokens(self, before: datetime, *, limit: int = 500) -> list[RefreshToken]:
        # Every token was created before it went idle: only those created before ``before`` can be.
        ids = self._redis.zrangebyscore(self._all_refresh_tokens, "-inf", f"({_ms(before)}")
        pipe = self._redis.pipeline(transaction=False)
        for token_id in ids:
            pipe.get(self._token_key(str(token_id)))
        found = (refresh_token_from_dict(json.loads(doc)) for doc in pipe.execute() if doc is not None)
        idle = [t for t in found if t.revoked_at is None and t.idle_since() < before]
        return sorted(idle, key=lambda t: (t.idle_since(), t.id))[:limit]

    def save_refresh_token(self, token: RefreshToken) -> None:
        # The user and created_at never change, so the user's index needs no update.
        if not self._redis.set(self._token_key(token.id), _dump(refresh_token_to_dict(token)), xx=True):
            raise RefreshTokenNotFound(f"no refresh token {token.id}")

    # ---------------------------------------------------------------- apps and their connections

    def _app_key(self, app_id: str) -> str:
        return f"{self._prefix}:{{app:{app_id}}}"

    def _links_key(self, app_id: str) -> str:
        return f"{self._prefix}:{{app:{app_id}}}:connections"

    def create_app(self, app: App) -> None:
        self._redis.zadd(self._all_apps, {app.app_id: _ms(app.created_at)}, nx=True)
        if not self._redis.set(self._app_key(app.app_id), _dump(app_to_dict(app)), nx=True):
            raise AlreadyExists(f"app {app.app_id} already exists")

    def get_app(self, app_id: str) -> App | None:
        doc = self._redis.get(self._app_key(app_id))
        return None if doc is None else app_from_dict(json.loads(doc))

    def list_apps(self, owners: Collection[str] | None = None) -> list[App]:
        ids = self._redis.zrange(self._all_apps, 0, -1)
        pipe = self._redis.pipeline(transaction=False)
        for app_id in ids:
            pipe.get(self._app_key(str(app_id)))
        apps = [app_from_dict(json.loads(doc)) for doc in pipe.execute() if doc is not None]
        found = [a for a in apps if owners is None or a.owner in owners]
        return sorted(found, key=lambda a: (a.created_at, a.app_id))

    def save_app(self, app: App, *, expected_version: int) -> bool:
        key = self._app_key(app.app_id)

        def swap(pipe: Any) -> bool:
            doc = pipe.get(key)
            if doc is None:
                raise AppNotFound(f"no app {app.app_id}")
            if int(json.loads(doc)["version"]) != expected_version:
                return False
            pipe.multi()
            pipe.set(key, _dump(app_to_dict(app)), xx=True)
            return True

        return bool(self._redis.transaction(swap, key, value_from_callable=True))  # type: ignore[arg-type]

    def delete_app(self, app_id: str) -> bool:
        deleted = self._redis.delete(self._app_key(app_id), self._links_key(app_id))
        self._redis.zrem(self._all_apps, app_id)
        return bool(deleted)

    def add_connection(self, connection: Connection) -> bool:
        app_key, links, tenant = (
            self._app_key(connection.app_id),
            self._links_key(connection.app_id),
            connection.tenant,
        )
        if not self._redis.exists(self._registration_key(connection.client_id)):
            raise RegistrationNotFound(f"no registration {connection.client_id}")
        held = self._redis.hget(links, tenant)
        if held is not None and self._redis.exists(self._registration_key(json.loads(held)["client_id"])):
            return False  # connected already (a held entry whose registration is gone gives way)
        doc = _dump(connection_to_dict(connection))

        def claim(pipe: Any) -> bool:
            if not pipe.exists(app_key):
                raise AppNotFound(f"no app {connection.app_id}")
            if pipe.hget(links, tenant) != held:
                return False  # another connection came first
            pipe.multi()
            pipe.hset(links, tenant, doc)
            return True

        return bool(self._redis.transaction(claim, app_key, links, value_from_callable=True))  # type: ignore[arg-type]

    def list_connections(
        self, *, app_id: str | None = None, tenants: Collection[str] | None = None
    ) -> list[Connection]:
        app_ids = (
            [app_id] if app_id is not None else [str(a) for a in self._redis.zrange(self._all_apps, 0, -1)]
        )
        pipe = self._redis.pipeline(transaction=False)
        for one in app_ids:
            pipe.hvals(self._links_key(one))
        links = [connection_from_dict(json.loads(doc)) for docs in pipe.execute() for doc in docs]
        links = [c for c in links if tenants is None or c.tenant in tenants]
        pipe = self._redis.pipeline(transaction=False)
        for c in links:
            pipe.exists(self._registration_key(c.client_id))
        alive = [c for c, present in zip(links, pipe.execute(), strict=True) if present]
        return sorted(alive, key=lambda c: (c.created_at, c.app_id, c.tenant))


def _readable_revocation(member: str) -> Revocation | None:
    """The entry stored as ``member``, or None (logged) when it cannot be read: one damaged entry
    must not hide every later one."""
    try:
        return revocation_from_dict(json.loads(member))
    except (ValueError, TypeError, KeyError):
        log.warning("embedauth: skipping an unreadable revocation entry")
        return None
