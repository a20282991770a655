"""The clock, injected once at construction so that tests never sleep.

A clock is any zero-argument callable returning POSIX seconds, like :func:`time.time` (the default):
the hot path compares floats, and models convert to aware UTC datetimes at the edges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "FrozenClock", "from_timestamp", "isoformat", "system_clock", "to_timestamp", "utcnow"]

Clock = Callable[[], float]

system_clock: Clock = time.time


def from_timestamp(seconds: float) -> datetime:
    """POSIX seconds to an aware UTC datetime, truncated to the microsecond."""
    return datetime.fromtimestamp(seconds, UTC)


def to_timestamp(moment: datetime) -> float:
    """An aware datetime to POSIX seconds; a naive one is refused (its zone would be a guess)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: embedauth only handles aware (UTC) times")
    return moment.timestamp()


def isoformat(moment: datetime, timespec: str = "milliseconds") -> str:
    """ISO 8601 in UTC with a ``Z``: the one text form of a time (JSON, stored documents, the CLI).

    ``timespec`` as :meth:`datetime.isoformat` (the CLI's text shows ``"seconds"``).
    """
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utcnow(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime, truncated to whole milliseconds.

    Milliseconds are what every backend stores exactly (MariaDB, Redis scores, JSON), so a value
    read back compares equal to the value written.
    """
    seconds = clock()
    return from_timestamp(int(seconds * 1000) / 1000)


class FrozenClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if start is None:
            start = time.time()
        elif isinstance(start, datetime):
            start = to_timestamp(start)
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, with a negative ``seconds``)."""
        with self._lock:
            self._now += seconds

    def set(self, moment: float | datetime) -> None:
        """Jump to ``moment`` (POSIX seconds or an aware datetime)."""
        with self._lock:
            self._now = to_timestamp(moment) if isinstance(moment, datetime) else float(moment)
