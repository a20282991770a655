"""The real servers the tests use, each in a throw-away namespace, and the skip-or-fail rule.

A server that cannot be reached skips its tests with the reason, unless
``EMBEDAUTH_REQUIRE_SERVICES=1`` (CI), where the same condition fails the test.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get(
    "EMBEDAUTH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("EMBEDAUTH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("EMBEDAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

BACKENDS = ("memory", "sqlite", "postgres", "mysql", "redis")


def unavailable(name: str, reason: str, hint: str | None = None) -> None:
    """Skip, or under EMBEDAUTH_REQUIRE_SERVICES=1 fail, because ``name`` is unreachable."""
    hint = hint or f"set EMBEDAUTH_TEST_{name.upper()}_URL"
    message = f"{name} unavailable ({reason}); {hint}"
    if os.environ.get("EMBEDAUTH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and EMBEDAUTH_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def unreachable(name: str) -> str | None:
    """None if the server ``name`` (postgres, mysql, redis) answers, else why not (the benchmarks
    ask too)."""
    try:
        if name == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
            client.ping()
            client.close()
        else:
            import sqlalchemy

            engine = sqlalchemy.create_engine(POSTGRES_URL if name == "postgres" else MYSQL_URL)
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unreachable"
        return f"{type(exc).__name__}: {exc}"
    return None


_probe = functools.cache(unreachable)  # probed once per run


def require(name: str) -> None:
    reason = _probe(name)
    if reason is not None:
        unavailable(name, reason)


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a new, empty schema of the test database; dropped after."""
    import sqlalchemy

    require("postgres")
    schema = f"embedauth_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_query(POSTGRES_URL, f"options=-csearch_path%3D{schema}")
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def mysql_database() -> Iterator[str]:
    """A URL of a new, empty MariaDB database; dropped after."""
    import sqlalchemy

    require("mysql")
    name = f"embedauth_{secrets.token_hex(6)}"
    admin = sqlalchemy.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # The server's default collation (case- and accent-insensitive), so the tables must set their own.
        conn.execute(sqlalchemy.text(f"CREATE DATABASE `{name}`"))
    try:
        base, _, query = MYSQL_URL.partition("?")
        url = base.rsplit("/", 1)[0] + "/" + name
        yield url + ("?" + query if query else "")
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE `{name}`"))
        admin.dispose()


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A URL whose keys all start with a new prefix; every such key is deleted after."""
    import redis

    require("redis")
    prefix = f"embedauth-test-{secrets.token_hex(6)}"
    try:
        yield _with_query(REDIS_URL, f"prefix={prefix}")
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextlib.contextmanager
def storage_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty storage URL for ``backend``, cleaned up after."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'embedauth.db'}"
    elif backend == "postgres":
        with postgres_schema() as url:
            yield url
    elif backend == "mysql":
        with mysql_database() as url:
            yield url
    elif backend == "redis":
        with redis_prefix() as url:
            yield url
    else:
        raise ValueError(backend)
