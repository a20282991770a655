"""``last_used_at``, coalesced: a use is written at most once per interval per key in each process.

A token exchange or a refresh-token use is a read; writing its time on every request would make
every request a write. The time shown is therefore at most :data:`RECORD_INTERVAL` seconds behind
the latest use (per process), which is what an admin deciding whether a credential is idle needs.
"""

from __future__ import annotations

from embedauth.clock import Clock
from embedauth.lru import LRUCache

__all__ = ["RECORD_INTERVAL", "UseRecorder"]

#: A key's use is written at most this often (seconds) by one process.
RECORD_INTERVAL = 60.0


class UseRecorder:
    """Says whether a use of ``key`` is due to be written; remembers the latest 10,000 keys."""

    def __init__(self, clock: Clock, *, interval: float = RECORD_INTERVAL, maxsize: int = 10_000) -> None:
        self._clock = clock
        self._interval = interval
        self._written: LRUCache[str, float] = LRUCache(maxsize)

    def due(self, key: str) -> bool:
        """True (and noted) when ``key``'s use has not been written in the last interval."""
        now = self._clock()
        last = self._written.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._written.put(key, now)
        return True
