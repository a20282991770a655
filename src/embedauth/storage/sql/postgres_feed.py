"""The PostgreSQL change feed: LISTEN on the channel ``add_revocation`` notifies in its transaction.

The notification is delivered on commit and never for a rolled-back entry. The channel is
``embedauth_revocations_`` and a hash of ``current_schema()``, so deployments (or test runs) in
different schemas of one database do not wake each other; NOTIFY does not cross databases anyway.
:class:`PostgresChangeFeed` LISTENs on a psycopg connection of its own (autocommit, from the same
URL, ``application_name`` ending in ``feed-<random>``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from embedauth.storage.feed import ConnectionFeed

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresChangeFeed", "feed_channel"]

#: libpq options of the feed connection unless the URL sets them: TCP keepalives notice a server that
#: vanished without closing the connection within about a minute.
_FEED_CONNECT_DEFAULTS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def feed_channel(schema: str | None) -> str:
    """The NOTIFY channel of the tables in ``schema`` (an identifier well under 63 bytes)."""
    return "embedauth_revocations_" + hashlib.sha256((schema or "").encode()).hexdigest()[:16]


class PostgresChangeFeed(ConnectionFeed):
    """LISTEN on the storage's revocation channel, over a psycopg connection of its own."""

    def __init__(self, connect_kwargs: Mapping[str, Any], channel: str, *, timeout: float) -> None:
        import psycopg

        self.errors = (psycopg.Error, OSError)
        self._kwargs = {
            **_FEED_CONNECT_DEFAULTS,
            "connect_timeout": max(1, math.ceil(timeout)),
            **connect_kwargs,
        }
        self._notify_channel = channel
        base = str(self._kwargs.get("application_name") or "embedauth")
        #: The feed connection's ``application_name`` (in ``pg_stat_activity``): unique per feed.
        self.application_name = f"{base[:40]} feed-{secrets.token_hex(4)}"
        self._kwargs["application_name"] = self.application_name
        self._conn: psycopg.Connection[Any] | None = None
        super().__init__()

    def _connect(self) -> None:
        """LISTEN; once this returns, every later commit's NOTIFY reaches the feed."""
        import psycopg
        from psycopg import sql

        self._conn = psycopg.connect(autocommit=True, **self._kwargs)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._notify_channel)))

    def _connected(self) -> bool:
        return self._conn is not None

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _next(self, timeout: float) -> bool:
        assert self._conn is not None
        return bool(list(self._conn.notifies(timeout=timeout, stop_after=1)))
