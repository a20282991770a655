"""Failed authentications, counted: argon2 is never free for an attacker.

A presented secret that the verified-secret cache does not know costs an argon2 run (tens of
milliseconds and 19 MiB). :class:`AuthThrottle` counts the runs that *failed*, per client ID (or
refresh-token id) and per source address, and refuses further attempts from either with
:class:`~embedauth.errors.TooManyAttempts` (429 and ``Retry-After``) *before* any argon2 work.

* Only failures count, and only after a cache miss: a client whose working secret is cached never
  reaches the throttle, so strangers hammering its client ID cannot lock it out. (A client whose
  secret is not cached, after a restart say, can be: it waits out the window like the stranger.)
* Each key has a bucket of ``limit`` attempts that refills at ``limit / window`` per second; a full
  window of silence forgives everything.
* IPv6 addresses count by their /64 network, the block a single host is usually given.
* Memory is bounded: the least recently failing keys are forgotten first (``maxsize`` each).
* The counts are per process: behind N processes an attacker gets N times the limit, still a
  constant, and each process's argon2 concurrency stays bounded (:class:`~embedauth.credentials.secrets.SecretHasher`).
"""

from __future__ import annotations

import ipaddress
import math
import threading

from embedauth.clock import Clock
from embedauth.errors import TooManyAttempts
from embedauth.lru import LRUCache

__all__ = ["AuthThrottle", "FailureLimit", "address_key"]


class FailureLimit:
    """At most ``limit`` failures per ``window`` seconds for each key (a token bucket)."""

    def __init__(self, *, limit: int, window: float, clock: Clock, maxsize: int = 100_000) -> None:
        self._limit = limit
        self._rate = limit / window
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: LRUCache[str, tuple[float, float]] = LRUCache(maxsize)  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self._limit)
        tokens, at = bucket
        return min(float(self._limit), tokens + (now - at) * self._rate)

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None if it may now."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
        return None if tokens >= 1 else max(1, math.ceil((1 - tokens) / self._rate))

    def failed(self, key: str) -> None:
        """Count one failure of ``key``."""
        with self._lock:
            now = self._clock()
            self._buckets.put(key, (max(0.0, self._tokens(key, now) - 1), now))


def address_key(address: str | None) -> str | None:
    """The key a source address counts under: IPv4 as it is, IPv6 by its /64 (None: unknown)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AuthThrottle:
    """Failure limits per presented identity (a client ID, a refresh-token id) and per source address."""

    def __init__(self, *, per_identity: int, per_address: int, window: float, clock: Clock) -> None:
        self._identities = FailureLimit(limit=per_identity, window=window, clock=clock)
        self._addresses = FailureLimit(limit=per_address, window=window, clock=clock)

    def check(self, identity: str, address: str | None) -> None:
        """:class:`~embedauth.errors.TooManyAttempts` if either has failed too often lately."""
        waits = [self._identities.retry_after(identity)]
        source = address_key(address)
        if source is not None:
            waits.append(self._addresses.retry_after(source))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            raise TooManyAttempts(wait)

    def failed(self, identity: str, address: str | None) -> None:
        """Count a failed attempt for both."""
        self._identities.failed(identity)
        source = address_key(address)
        if source is not None:
            self._addresses.failed(source)
