"""The two bounded maps every embedauth cache is one of.

* :class:`LRUCache`: thread-safe, least recently used out first; for what costs something to
  recompute (verified tokens, verified secrets, registrations). Hand-written (twenty lines over
  :class:`collections.OrderedDict`) because it sits on the token verification hot path, where a
  general-purpose cache library's per-call overhead shows.
* :class:`BoundedDict`: a plain dict emptied when full; for the few distinct values a deployment
  derives again and again (parsed headers, encoded response headers, URLs), where a hit must be
  one dict lookup and a full map means someone is sending made-up values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["BoundedDict", "LRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries; ``maxsize=0`` stores nothing."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("maxsize cannot be negative")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or None.

        No lock: each ``OrderedDict`` call is one step under the GIL (the keys are strings, whose
        hashing and comparison run no Python code), and a key another thread evicted between the
        two steps is simply not moved."""
        data = self._data
        value = data.get(key)
        if value is not None:
            try:  # noqa: SIM105 - suppress() would cost a context manager per hit
                data.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``; the least recently used entries go beyond ``maxsize``."""
        if self.maxsize == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Remove ``key`` and return its value, or None."""
        with self._lock:
            return self._data.pop(key, None)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class BoundedDict(dict[K, V]):
    """A dict of at most ``maxsize`` entries: :meth:`put` empties it when full. Reads are the
    dict's own (``get``, ``in``, ``[]``), so a hit costs one lookup. Each read and write is one
    step under the GIL; two threads putting at once at worst empty it twice."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: K, value: V) -> None:
        """Store ``value``, after emptying the map if it is full."""
        if len(self) >= self.maxsize:
            self.clear()
        self[key] = value
