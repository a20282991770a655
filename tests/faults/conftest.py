"""Fixtures of the fault tests: a Redis server and a PostgreSQL cluster of the test's own.

Each is function-scoped (a test may kill, hang or restore it at will) and closed after the test,
pass or fail. Without the programs they need, the tests skip, or under
``EMBEDAUTH_REQUIRE_SERVICES=1`` fail (:func:`tests.services.unavailable`). Fault test modules mark
themselves with ``pytestmark = pytest.mark.faults`` (``-m "not faults"`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests.faults.servers import (
    PostgresCluster,
    RedisServer,
    ServeProcess,
    postgres_unavailable,
    redis_unavailable,
)
from tests.services import unavailable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: a fault test: kills, hangs or restores servers of its own (tests/faults)"
    )


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own, empty, on a free port; killed and deleted after."""
    reason = redis_unavailable()
    if reason is not None:
        unavailable("redis-server", reason, "install redis-server (Debian: apt-get install redis-server)")
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own, on a free port; stopped and deleted after."""
    reason = postgres_unavailable()
    if reason is not None:
        unavailable(
            "postgres-server",
            reason,
            "install PostgreSQL (Debian: apt-get install postgresql), or set EMBEDAUTH_TEST_PG_BIN",
        )
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    """Start ``embedauth serve`` processes: ``serve(storage_url, env={...}, **options)``; all stopped
    after the test (see :class:`~tests.faults.servers.ServeProcess`)."""
    started: list[ServeProcess] = []

    def start(storage_url: str, env: Mapping[str, str] | None = None, **options: Any) -> ServeProcess:
        process = ServeProcess(storage_url, env=env, **options)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()
