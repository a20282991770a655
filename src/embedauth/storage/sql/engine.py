"""Engines: the one driver per database, and the session settings each database needs.

PostgreSQL and MariaDB write at READ COMMITTED (no gap locks, no serialization failures on the
compare-and-set) and read at REPEATABLE READ (a registration and its children from one snapshot).
SQLite runs in WAL mode and starts every write with ``BEGIN IMMEDIATE``, so writers queue on the
busy timeout instead of failing with "database is locked" when a read lock cannot be upgraded; its
``lower()`` is replaced so that searches fold case as on the other databases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from embedauth.errors import ConfigurationError

__all__ = ["READ", "create_engine_for", "engine_url"]

#: The execution option that marks a read-only connection (SQLite then begins without a write lock).
READ = "embedauth_read"


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL for a storage URL, on the one driver supported for each database."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError("cannot parse the SQL storage URL") from exc
    backend, _, driver = parsed.drivername.partition("+")
    backend = {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)
    wanted = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}.get(backend)
    if wanted is None or driver not in ("", wanted):
        raise ConfigurationError(
            f"unsupported SQL scheme {parsed.drivername!r}: use sqlite, postgresql[+psycopg] "
            "or mysql/mariadb[+pymysql]"
        )
    parsed = parsed.set(drivername=f"{backend}+{wanted}")
    if backend == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(
            "SQLite storage needs a file (sqlite:///path/embedauth.db); use memory:// instead"
        )
    return parsed


def _sqlite_lower(value: object) -> object:
    """Replaces SQLite's ASCII-only ``lower()``, so searches fold case as on the other databases."""
    return value.lower() if isinstance(value, str) else value


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function("lower", 1, _sqlite_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ) else "BEGIN IMMEDIATE")


def create_engine_for(url: URL, *, timeout: float) -> Engine:
    """The engine for ``url``, with the pool and session settings of its database.

    ``timeout`` (seconds) bounds connecting, waiting for a pooled connection, and each statement:
    PostgreSQL's ``statement_timeout`` and ``lock_timeout``, PyMySQL's read and write timeouts,
    SQLite's busy timeout. Bound parameters never appear in an error's text (they may be hashes).
    """
    pool: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 20,
        "pool_timeout": timeout,
        "hide_parameters": True,
    }
    backend = url.get_backend_name()
    if backend == "postgresql":
        engine = create_engine(
            url,
            isolation_level="READ COMMITTED",
            connect_args={"connect_timeout": max(1, math.ceil(timeout))},  # libpq takes whole seconds
            **pool,
        )
        event.listen(engine, "connect", _postgres_timeouts(timeout))
        return engine
    if backend == "mysql":
        limits = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
        return create_engine(url, isolation_level="READ COMMITTED", connect_args=limits, **pool)
    engine = create_engine(url, connect_args={"timeout": timeout}, **pool)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _postgres_timeouts(timeout: float) -> Callable[[Any, Any], None]:
    milliseconds = max(1, int(timeout * 1000))

    def set_timeouts(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")
            cursor.execute(f"SET lock_timeout = {milliseconds}")
        dbapi_connection.commit()

    return set_timeouts
