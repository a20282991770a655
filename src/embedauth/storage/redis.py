"""``redis://`` and ``rediss://``: Redis (or a Redis Cluster) through redis-py's sync client.

URL: ``redis://[user:password@]host:port/db?prefix=myapp`` — ``prefix`` (default ``embedauth``) starts
every key; the other query parameters go to :meth:`redis.Redis.from_url`.

Key layout (``P`` = prefix; ``{…}`` is a Redis Cluster hash tag: keys with the same tag share a slot,
and every multi-key script below touches one tag only)::

    P:schema                      string  layout version (SET NX on first open)
    P:{catalog}:permissions       hash    name -> permission JSON
    P:{catalog}:holders           hash    name -> how many registrations hold it
    P:{r:<client_id>}             hash    doc (registration JSON), version, used (last_used_at ms)
    P:{t:<tenant>}:registrations  zset    client_id, scored by created_at ms
    P:once:<key>                  string  expiry ms, with a PX TTL so Redis collects it
    P:{rev}:seq                   string  the revocation counter (INCR)
    P:{rev}:log                   zset    revocation JSON (with its seq), scored by seq
    P:{rev}:expiry                zset    the same members, scored by expires_at ms
    P:{keys}:signing              hash    kid -> signing key JSON
    P:{rt:<token_id>}             string  refresh token JSON
    P:{rtu:<user>}:tokens         zset    token id, scored by created_at ms
    P:revocations                 channel pub/sub: every add_revocation publishes its seq here

Times are stored in whole milliseconds, like the JSON of :mod:`embedauth.storage.codec`. A prefix with
a hash tag of its own (``app{1}``) puts every key in one slot: legal, just not spread.

Atomicity (Lua scripts; "now" is always the storage clock's, passed in, never Redis's own time):

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
  tenant loads all its registrations: the name filter and the total are computed client-side.
* ``add_revocation`` increments the counter, appends and publishes on ``P:revocations`` in one script
  (a subscriber is woken only once the entry is readable); ``revocations_after`` purges expired
  entries (by the ``expiry`` set) and reads, in one script.

Change feed (:meth:`RedisStorage.open_change_feed`): a :class:`RedisChangeFeed` holds its own
connection subscribed to ``P:revocations`` (channels are not keys: a prefix of its own per
deployment, or per test run, keeps feeds apart). Messages published while it is disconnected are lost,
which the feed reports as a ``StorageError``; the caller then re-reads by ``seq``.

Migrations: ``P:schema`` holds the layout version. A future layout would add a step that
:meth:`RedisStorage._open` runs while the stored version is lower (holding a ``SET NX PX`` lock key),
rewriting the keys it changes and then setting ``P:schema``; a newer stored version than this code
knows is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from embedauth.clock import Clock, from_timestamp
from embedauth.errors import (
    AlreadyExists,
    ConfigurationError,
    NotFound,
    PermissionInUse,
    PermissionNotFound,
    RefreshTokenNotFound,
    RegistrationNotFound,
    StorageError,
    UnknownPermission,
)
from embedauth.models import Page, Permission, RefreshToken, Registration, Revocation, SigningKey
from embedauth.storage.base import SCHEMA_VERSION, ChangeFeed, ConnectionFeed, Storage
from embedauth.storage.codec import (
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

__all__ = ["RedisChangeFeed", "RedisStorage"]

# KEYS: permissions, holders. ARGV: scopes. Counts them held if all exist; returns the missing ones.
ACQUIRE_SCOPES = """
local missing = {}
for _, name in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], name) == 0 then missing[#missing + 1] = name end
end
if #missing == 0 then
  for _, name in ipairs(ARGV) do redis.call('HINCRBY', KEYS[2], name, 1) end
end
return missing
"""

# KEYS: holders. ARGV: scopes.
RELEASE_SCOPES = """
for _, name in ipairs(ARGV) do
  if redis.call('HINCRBY', KEYS[1], name, -1) <= 0 then redis.call('HDEL', KEYS[1], name) end
end
return 0
"""

# KEYS: permissions, holders. ARGV: name. -1: absent; n > 0: held n times; 0: removed.
REMOVE_PERMISSION = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held > 0 then return held end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
"""

# KEYS: registration. ARGV: doc, version, used ms or ''. 1: created; 0: the id is taken.
CREATE_REGISTRATION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'used', ARGV[3]) end
return 1
"""

# KEYS: registration. ARGV: expected version, doc, version. {1, old doc} | {0}: stale | {-1}: absent.
SAVE_REGISTRATION = """
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {-1} end
if tonumber(version) ~= tonumber(ARGV[1]) then return {0} end
local old = redis.call('HGET', KEYS[1], 'doc')
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', ARGV[3])
return {1, old}
"""

# KEYS: registration. ARGV: used ms. Only moves forward; ignores a missing registration.
RECORD_USE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local used = redis.call('HGET', KEYS[1], 'used')
if used and tonumber(used) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'used', ARGV[1])
return 1
"""

# KEYS: registration. Returns the document deleted, or nil.
DELETE_REGISTRATION = """
local doc = redis.call('HGET', KEYS[1], 'doc')
if doc then redis.call('DEL', KEYS[1]) end
return doc
"""

# KEYS: key. ARGV: now ms, expires ms, TTL ms. 1: consumed; 0: consumed before and not yet expired.
CONSUME_ONCE = """
local until_ms = redis.call('GET', KEYS[1])
if until_ms and tonumber(until_ms) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: seq, log, expiry. ARGV: entry JSON, expires ms, feed channel. Returns the new seq.
# PUBLISH is not a key command, so it stays legal on a cluster; subscribers act on the message only
# after the script (and so the write) has completed.
ADD_REVOCATION = """
local seq = redis.call('INCR', KEYS[1])
local entry = cjson.decode(ARGV[1])
entry['seq'] = seq
local member = cjson.encode(entry)
redis.call('ZADD', KEYS[2], seq, member)
redis.call('ZADD', KEYS[3], ARGV[2], member)
redis.call('PUBLISH', ARGV[3], seq)
return seq
"""

# KEYS: log, expiry. ARGV: seq, now ms. Purges expired entries; returns those after seq, in order.
REVOCATIONS_AFTER = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
for _, member in ipairs(gone) do redis.call('ZREM', KEYS[1], member) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
"""

# KEYS: hash. ARGV: field, value. Replaces an existing field; 0 if absent.
REPLACE_FIELD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


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


#: The longest one blocking read of a feed lasts: how late a :meth:`RedisChangeFeed.close` from another
#: thread is noticed. Such a read is a local ``select`` on the socket, not a round trip.
#: How long :meth:`RedisStorage.open_change_feed` waits for Redis to confirm the subscription.
_SUBSCRIBE_TIMEOUT = 10.0
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

    def __init__(self, connection_url: str, channel: str) -> None:
        self._url = connection_url
        self._channel = channel
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
            socket_keepalive=True,
            socket_keepalive_options=_FEED_KEEPALIVE,
        )
        self._pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        self._pubsub.subscribe(self._channel)
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
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
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (redis.RedisError,)

    def __init__(self, url: str, *, clock: Clock) -> None:
        super().__init__(url, clock=clock)
        connection_url, prefix = _connection_url(url)
        try:
            self._redis = redis.Redis.from_url(connection_url, decode_responses=True)
        except ValueError as exc:
            raise ConfigurationError(f"invalid redis storage URL: {exc}") from exc
        self._prefix = prefix
        self._permissions = f"{prefix}:{{catalog}}:permissions"
        self._holders = f"{prefix}:{{catalog}}:holders"
        self._rev_seq = f"{prefix}:{{rev}}:seq"
        self._rev_log = f"{prefix}:{{rev}}:log"
        self._rev_expiry = f"{prefix}:{{rev}}:expiry"
        self._rev_channel = f"{prefix}:revocations"
        self._connection_url = connection_url
        self._signing = f"{prefix}:{{keys}}:signing"
        script = self._redis.register_script
        self._acquire_scopes = script(ACQUIRE_SCOPES)
        self._release_scopes = script(RELEASE_SCOPES)
        self._remove_permission = script(REMOVE_PERMISSION)
        self._create_registration = script(CREATE_REGISTRATION)
        self._save_registration = script(SAVE_REGISTRATION)
        self._record_use = script(RECORD_USE)
        self._delete_registration = script(DELETE_REGISTRATION)
        self._consume_once = script(CONSUME_ONCE)
        self._add_revocation = script(ADD_REVOCATION)
        self._revocations_after = script(REVOCATIONS_AFTER)
        self._replace_field = script(REPLACE_FIELD)
        self._closed = False
        try:
            with self.translate_errors():
                self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Mark a new store with the current layout; refuse one written by a newer layout."""
        self._redis.set(f"{self._prefix}:schema", SCHEMA_VERSION, nx=True)
        stored = self.schema_version()
        if stored > SCHEMA_VERSION:
            raise StorageError(f"stored layout {stored} is newer than this embedauth ({SCHEMA_VERSION})")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self.translate_errors():
                self._redis.close()

    def open_change_feed(self) -> ChangeFeed | None:
        return RedisChangeFeed(self._connection_url, self._rev_channel)

    def schema_version(self) -> int:
        with self.translate_errors():
            return int(self._redis.get(f"{self._prefix}:schema") or 0)

    def _now_ms(self) -> int:
        return _ms(from_timestamp(self.clock()))

    # ---------------------------------------------------------------- permission catalog

    def add_permission(self, permission: Permission) -> None:
        with self.translate_errors():
            doc = _dump(permission_to_dict(permission))
            if not self._redis.hsetnx(self._permissions, permission.name, doc):
                raise AlreadyExists(f"permission {permission.name!r} already exists")

    def get_permission(self, name: str) -> Permission | None:
        with self.translate_errors():
            doc = self._redis.hget(self._permissions, name)
        return None if doc is None else permission_from_dict(json.loads(doc))

    def list_permissions(self, *, contains: str | None = None) -> list[Permission]:
        with self.translate_errors():
            found = [permission_from_dict(json.loads(doc)) for doc in self._redis.hvals(self._permissions)]
        if contains:
            needle = contains.lower()
            found = [p for p in found if needle in p.name.lower() or needle in p.description.lower()]
        return sorted(found, key=lambda p: p.name)

    def remove_permission(self, name: str) -> None:
        with self.translate_errors():
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
        return _dump(registration_to_dict(dataclasses.replace(registration, last_used_at=None)))

    @staticmethod
    def _load_registration(row: Sequence[str | bytes | None]) -> Registration | None:
        """A registration from its hash's ``doc`` and ``used`` fields (the one reader of both)."""
        doc, used = row
        if doc is None:
            return None
        last_used = None if used is None else _EPOCH + int(used) * _MS
        return dataclasses.replace(registration_from_dict(json.loads(doc)), last_used_at=last_used)

    def create_registration(self, registration: Registration) -> None:
        scopes, cid = _scopes(registration.scopes), registration.client_id
        used = "" if registration.last_used_at is None else str(_ms(registration.last_used_at))
        with self.translate_errors():
            missing = self._acquire(scopes)
            if missing:
                raise _unknown(missing)
            index = self._tenant_key(registration.tenant)
            indexed = self._redis.zadd(index, {cid: _ms(registration.created_at)}, nx=True)
            doc = self._registration_doc(registration)
            if not self._create_registration(
                keys=[self._registration_key(cid)], args=[doc, registration.version, used]
            ):
                if indexed:
                    self._redis.zrem(index, cid)
                self._release(scopes)
                raise AlreadyExists(f"registration {cid} already exists")

    def get_registration(self, client_id: str) -> Registration | None:
        with self.translate_errors():
            row = self._redis.hmget(self._registration_key(client_id), ["doc", "used"])
        return self._load_registration(row)

    def list_registrations(
        self, tenant: str, *, name_contains: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[Registration]:
        with self.translate_errors():
            ids = self._redis.zrange(self._tenant_key(tenant), 0, -1)
            pipe = self._redis.pipeline(transaction=False)
            for cid in ids:
                pipe.hmget(self._registration_key(str(cid)), ["doc", "used"])
            rows = pipe.execute()
        loaded = (self._load_registration(row) for row in rows)
        found = [r for r in loaded if r is not None and r.tenant == tenant]
        if name_contains:
            needle = name_contains.lower()
            found = [r for r in found if needle in r.name.lower()]
        return Page(items=found[offset : offset + limit], total=len(found), offset=offset, limit=limit)

    def save_registration(self, registration: Registration, *, expected_version: int) -> bool:
        scopes, key = _scopes(registration.scopes), self._registration_key(registration.client_id)
        with self.translate_errors():
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
            result = self._save_registration(keys=[key], args=[expected_version, doc, registration.version])
            if result[0] != 1:
                self._release(scopes)
                if result[0] < 0:
                    raise RegistrationNotFound(f"no registration {registration.client_id}")
                return False
            self._release(_scopes(json.loads(result[1])["scopes"]))
            return True

    def record_use(self, client_id: str, at: datetime) -> None:
        with self.translate_errors():
            self._record_use(keys=[self._registration_key(client_id)], args=[_ms(at)])

    def delete_registrations(self, client_ids: Sequence[str]) -> list[str]:
        deleted = []
        with self.translate_errors():
            for cid in client_ids:
                doc = self._delete_registration(keys=[self._registration_key(cid)])
                if doc is None:
                    continue
                stored = json.loads(doc)
                self._redis.zrem(self._tenant_key(stored["tenant"]), cid)
                self._release(_scopes(stored["scopes"]))
                deleted.append(cid)
        return deleted

    # ---------------------------------------------------------------- one-time keys

    def consume_once(self, key: str, expires_at: datetime) -> bool:
        now_ms, until_ms = self._now_ms(), _ms(expires_at)
        with self.translate_errors():
            return bool(
                self._consume_once(
                    keys=[f"{self._prefix}:once:{key}"], args=[now_ms, until_ms, max(1, until_ms - now_ms)]
                )
            )

    # ---------------------------------------------------------------- revocations

    def add_revocation(self, revocation: Revocation) -> int:
        with self.translate_errors():
            return int(
                self._add_revocation(
                    keys=[self._rev_seq, self._rev_log, self._rev_expiry],
                    args=[
                        _dump(revocation_to_dict(revocation)),
                        _ms(revocation.expires_at),
                        self._rev_channel,
                    ],
                )
            )

    def revocations_after(self, seq: int) -> list[Revocation]:
        with self.translate_errors():
            keys, now_ms = [self._rev_log, self._rev_expiry], self._now_ms()
            entries = self._revocations_after(keys=keys, args=[seq, now_ms])
        return [revocation_from_dict(json.loads(entry)) for entry in entries]

    # ---------------------------------------------------------------- signing keys

    def add_signing_key(self, key: SigningKey) -> None:
        with self.translate_errors():
            if not self._redis.hsetnx(self._signing, key.kid, _dump(signing_key_to_dict(key))):
                raise AlreadyExists(f"signing key {key.kid} already exists")

    def list_signing_keys(self) -> list[SigningKey]:
        with self.translate_errors():
            found = [signing_key_from_dict(json.loads(doc)) for doc in self._redis.hvals(self._signing)]
        return sorted(found, key=lambda k: (k.created_at, k.kid))

    def save_signing_key(self, key: SigningKey) -> None:
        with self.translate_errors():
            if not self._replace_field(keys=[self._signing], args=[key.kid, _dump(signing_key_to_dict(key))]):
                raise NotFound(f"no signing key {key.kid}")

    def delete_signing_key(self, kid: str) -> None:
        with self.translate_errors():
            self._redis.hdel(self._signing, kid)

    # ---------------------------------------------------------------- refresh tokens

    def _token_key(self, token_id: str) -> str:
        return f"{self._prefix}:{{rt:{token_id}}}"

    def _user_key(self, user: str) -> str:
        return f"{self._prefix}:{{rtu:{user}}}:tokens"

    def add_refresh_token(self, token: RefreshToken) -> None:
        with self.translate_errors():
            index = self._user_key(token.user)
            indexed = self._redis.zadd(index, {token.id: _ms(token.created_at)}, nx=True)
            if not self._redis.set(self._token_key(token.id), _dump(refresh_token_to_dict(token)), nx=True):
                if indexed:
                    self._redis.zrem(index, token.id)
                raise AlreadyExists(f"refresh token {token.id} already exists")

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        with self.translate_errors():
            doc = self._redis.get(self._token_key(token_id))
        return None if doc is None else refresh_token_from_dict(json.loads(doc))

    def list_refresh_tokens(self, user: str) -> list[RefreshToken]:
        with self.translate_errors():
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

        with self.translate_errors():
            self._redis.transaction(update, key)

    def save_refresh_token(self, token: RefreshToken) -> None:
        # The user and created_at never change, so the user's index needs no update.
        with self.translate_errors():
            if not self._redis.set(self._token_key(token.id), _dump(refresh_token_to_dict(token)), xx=True):
                raise RefreshTokenNotFound(f"no refresh token {token.id}")
