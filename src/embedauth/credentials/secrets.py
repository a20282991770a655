"""Identifiers and secrets: generation, format checks, hints, argon2id hashing, the verified cache.

A client secret is ``eas_`` + 43 random base62 characters (256 bits) + a 6-character base62 CRC-32
of everything before it, like GitHub's tokens: a scanner finds leaks by the prefix, and a mistyped
or truncated secret is refused by its checksum before any storage lookup or hash. A refresh token
is ``ear_`` + its 22-character id + the same 43 + 6 characters, so it can be found by id and then
verified against its hash. The checksum detects accidents; the 256 random bits are the security.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets as _random
import threading
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from embedauth.blocking import may_block
from embedauth.errors import Busy, InvalidSecret
from embedauth.lru import LRUCache

__all__ = [
    "CLIENT_SECRET_PREFIX",
    "REFRESH_TOKEN_PREFIX",
    "SecretCache",
    "SecretHasher",
    "Stored",
    "VerifiedSecret",
    "generate_client_secret",
    "generate_refresh_token",
    "hint",
    "match_secret",
    "new_client_id",
    "new_id",
    "parse_client_secret",
    "parse_refresh_token",
]

CLIENT_SECRET_PREFIX = "eas_"  # noqa: S105 - a prefix, not a secret
REFRESH_TOKEN_PREFIX = "ear_"  # noqa: S105 - a prefix, not a secret
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62 = re.compile("[0-9A-Za-z]*")
BODY_LENGTH = 43  # 62**43 > 2**256
ID_LENGTH = 22  # 62**22 > 2**130
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
HINT_LENGTH = 3


def _base62(value: int, width: int) -> str:
    """``value`` in ``width`` base62 digits, most significant first (ValueError if it does not fit)."""
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(digits))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), CHECKSUM_LENGTH)


#: A random byte below 248 (4 × 62) names a base62 digit by its remainder, each digit equally
#: often; the 8 bytes above are dropped (rejection sampling: no digit is likelier than another).
_DIGIT_OF_BYTE = bytes(ord(ALPHABET[b % 62]) for b in range(256))
_UNEVEN_BYTES = bytes(range(4 * 62, 256))


def _random_base62(width: int) -> str:
    """``width`` uniformly random base62 digits (log2(62) ≈ 5.95 bits each), from the OS's random
    bytes: one ``os.urandom`` call, translated in C (it runs for every token's id)."""
    while True:
        digits = _random.token_bytes(width + 8).translate(_DIGIT_OF_BYTE, _UNEVEN_BYTES)
        if len(digits) >= width:  # fewer only when 9 or more of the bytes were dropped (< 1e-5)
            return digits[:width].decode("ascii")


def _with_checksum(text: str) -> str:
    return text + _checksum(text)


def new_id() -> str:
    """A random 22-character base62 id (131 bits) for tokens, credentials, keys and refresh tokens."""
    return _random_base62(ID_LENGTH)


def new_client_id() -> str:
    """A client ID: a random UUID, as Entra ID and most authorization servers issue them."""
    return str(uuid.uuid4())


def generate_client_secret() -> str:
    """A new client secret: ``eas_`` + 256 random bits in base62 + a checksum."""
    return _with_checksum(CLIENT_SECRET_PREFIX + _random_base62(BODY_LENGTH))


def generate_refresh_token() -> tuple[str, str]:
    """A new refresh token and its id."""
    token_id = new_id()
    return token_id, _with_checksum(REFRESH_TOKEN_PREFIX + token_id + _random_base62(BODY_LENGTH))


def _check(value: object, prefix: str, length: int, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) != length
        or not value.startswith(prefix)
        or not _BASE62.fullmatch(value, len(prefix))
        or not hmac.compare_digest(_checksum(value[:-CHECKSUM_LENGTH]), value[-CHECKSUM_LENGTH:])
    ):
        raise InvalidSecret(f"not a well-formed {what}")
    return value


def parse_client_secret(value: object) -> str:
    """The secret itself, or :class:`InvalidSecret` if its format or checksum is wrong."""
    return _check(
        value,
        CLIENT_SECRET_PREFIX,
        len(CLIENT_SECRET_PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH,
        "client secret",
    )


def parse_refresh_token(value: object) -> str:
    """The refresh token's id, or :class:`InvalidSecret` if its format or checksum is wrong."""
    prefix = REFRESH_TOKEN_PREFIX
    token = _check(value, prefix, len(prefix) + ID_LENGTH + BODY_LENGTH + CHECKSUM_LENGTH, "refresh token")
    return token[len(prefix) : len(prefix) + ID_LENGTH]


def hint(secret: str) -> str:
    """What an admin sees of a secret later: its prefix and first three random characters."""
    prefix_end = secret.index("_") + 1
    return secret[: prefix_end + HINT_LENGTH]


class SecretHasher:
    """argon2id hashing, at most ``max_concurrency`` runs at once in this process.

    A run waits up to ``queue_timeout`` seconds for a turn, then :class:`~embedauth.errors.Busy`:
    however many requests arrive, memory stays under ``max_concurrency`` × the argon2 memory cost
    and the CPU is shared, not swamped. The encoded parameters of a stored hash let it be upgraded
    when it is *weaker* than this hasher's (never when merely different, so processes configured
    differently do not re-hash one another's on every request).
    """

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        max_concurrency: int = 0,
        queue_timeout: float = 2.0,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self.max_concurrency = max_concurrency or os.cpu_count() or 1
        self._turns = threading.BoundedSemaphore(self.max_concurrency)
        self._queue_timeout = queue_timeout
        self._count_lock = threading.Lock()
        #: Runs in progress now, and the most ever at once (for tests and the health page).
        self.running = 0
        self.peak = 0
        self._dummy = self.hash(_random.token_urlsafe(32))

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        may_block("argon2")
        if not self._turns.acquire(timeout=self._queue_timeout):
            raise Busy
        with self._count_lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            with self._count_lock:
                self.running -= 1
            self._turns.release()

    def hash(self, secret: str) -> str:
        """The argon2id hash of ``secret`` (with a fresh salt) in its encoded form."""
        with self._turn():
            return self._hasher.hash(secret)

    def verify(self, secret_hash: str | None, secret: str) -> bool:
        """True if ``secret`` matches; with no hash, spends the same time and returns False.

        The dummy verification keeps an unknown client as slow as a wrong secret.
        """
        with self._turn():
            try:
                return self._hasher.verify(secret_hash or self._dummy, secret) and secret_hash is not None
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, secret_hash: str) -> bool:
        """Whether ``secret_hash`` is weaker than this hasher's parameters (or not argon2id)."""
        try:
            stored = argon2.extract_parameters(secret_hash)
        except InvalidHashError:
            return True
        mine = self._hasher
        return stored.type is not argon2.Type.ID or (
            stored.memory_cost < mine.memory_cost
            or stored.time_cost < mine.time_cost
            or stored.parallelism < mine.parallelism
        )


@dataclass(frozen=True, slots=True)
class VerifiedSecret:
    """What a successful argon2 verification proved: this secret matches this stored hash.

    ``owner`` is the client ID (client secrets) or the user (refresh tokens).
    """

    owner: str
    credential_id: str
    secret_hash: str


class SecretCache:
    """Remembers successful verifications so repeat token requests skip argon2.

    Keyed by a MAC of the presented secret under a per-process random key (keyed BLAKE2b, a MAC by
    design, a third of HMAC-SHA256's cost on every token request): the cache holds no secret, and
    its keys are useless outside the process. A hit is only a shortcut for the hash comparison:
    the caller still checks that the credential is present with the same hash
    (:func:`match_secret`), so a rotation or deletion takes effect at once in every process, with
    nothing to invalidate.
    """

    def __init__(self, maxsize: int) -> None:
        self._key = _random.token_bytes(32)
        self._entries: LRUCache[bytes, VerifiedSecret] = LRUCache(maxsize)

    def _digest(self, secret: str) -> bytes:
        return hashlib.blake2b(secret.encode(), key=self._key, digest_size=32).digest()

    def get(self, secret: str) -> VerifiedSecret | None:
        """What an earlier verification of ``secret`` proved, if it is still remembered."""
        return self._entries.get(self._digest(secret))

    def put(self, secret: str, verified: VerifiedSecret) -> None:
        """Remember that ``secret`` verified (the least recently used entry goes when full)."""
        self._entries.put(self._digest(secret), verified)

    def __len__(self) -> int:
        return len(self._entries)


#: A stored secret as :func:`match_secret` sees it: credential id, hint, argon2 hash.
Stored = tuple[str, str, str]


def match_secret(
    hasher: SecretHasher,
    cache: SecretCache,
    secret: str,
    owner: str,
    stored: Sequence[Stored],
    cached: VerifiedSecret | None,
) -> str | None:
    """The id of the stored secret that ``secret`` is, or None.

    The one way a presented secret is checked. ``cached`` is what ``cache.get(secret)`` answered:
    the caller looks first, since a presentation the cache cannot answer is throttled before the
    lookup that precedes this call. A cache hit counts only if it is ``owner``'s and that id
    still has that hash (a rotation or deletion removed it otherwise). Otherwise exactly one
    argon2 verification: against the stored hash whose hint is the secret's (an owner's secrets
    have distinct hints), or against a dummy hash when none has it, so an unknown client and a
    wrong secret cost the same, whatever the number of secrets stored.
    """
    if (
        cached is not None
        and cached.owner == owner
        and any(cid == cached.credential_id and h == cached.secret_hash for cid, _, h in stored)
    ):
        return cached.credential_id
    presented = hint(secret)
    candidates = [(cid, h) for cid, stored_hint, h in stored if stored_hint == presented]
    if not candidates:
        hasher.verify(None, secret)
    for credential_id, secret_hash in candidates:  # one, unless data older than the rule collides
        if hasher.verify(secret_hash, secret):
            cache.put(secret, VerifiedSecret(owner, credential_id, secret_hash))
            return credential_id
    return None
