"""The fault-test servers do what they promise: kill, restart, snapshot and restore, hang and resume."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import sqlalchemy
from sqlalchemy.pool import NullPool

from embedauth.clock import FrozenClock
from embedauth.hooks import make_plugin_manager
from embedauth.storage import open_storage
from tests.faults.servers import (
    HangMethod,
    PostgresCluster,
    RedisServer,
    ServeProcess,
    _alive,
    free_port,
    redis_unavailable,
    wait_until,
)
from tests.integration.conftest import REPO, child_env

pytestmark = pytest.mark.faults

PING = b"*1\r\n$4\r\nPING\r\n"


def timed(action: Callable[[], object]) -> tuple[BaseException | None, float]:
    """What ``action`` raised (None if nothing) and how long it took."""
    started = time.monotonic()
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the caller asserts on the type
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


# ---------------------------------------------------------------------------- helpers


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_until_returns_the_value_or_times_out() -> None:
    calls: list[int] = []

    def third_time() -> int | None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return len(calls)

    assert wait_until(third_time, timeout=2, interval=0.001, ignore=(ConnectionError,)) == 3
    with pytest.raises(TimeoutError, match=r"never within 0\.05 s"):
        wait_until(lambda: None, timeout=0.05, interval=0.01, message="never")


# ---------------------------------------------------------------------------- Redis


def test_redis_url_is_an_embedauth_storage_url(redis_server: RedisServer) -> None:
    url = redis_server.url(prefix="faults")
    assert url == f"redis://127.0.0.1:{redis_server.port}/0?prefix=faults"
    assert redis_server.port != 6379
    store = open_storage(url, clock=FrozenClock(1_790_000_000.0), plugins=make_plugin_manager())
    try:
        store.ping()
    finally:
        store.close()


def test_redis_kill_then_start_answers_on_the_same_port_without_the_data(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url(), socket_timeout=1, socket_connect_timeout=1)
    try:
        client.set("key", "value")
        old_pid = redis_server.pid
        redis_server.kill()
        assert not redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()

        redis_server.start()
        assert redis_server.pid != old_pid
        assert client.ping() is True  # the same client, the same URL
        assert client.get("key") is None
    finally:
        client.close()


def test_redis_restart_empties_unless_asked_to_keep(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.set("key", "value")
        redis_server.restart(empty=False)
        assert client.get("key") == "value"
        redis_server.restart()
        assert client.get("key") is None
        assert not redis_server.rdb_path.exists()


def test_redis_restore_brings_back_exactly_the_snapshot(redis_server: RedisServer) -> None:
    port = redis_server.port
    with redis_server.client() as client:
        client.set("kept", "1")
        client.set("changed", "before")
        for _ in range(3):
            client.incr("counter")
        snapshot = redis_server.snapshot()

        client.set("later", "1")
        client.set("changed", "after")
        client.delete("kept")
        assert client.incr("counter", 2) == 5

        redis_server.restore(snapshot)
        assert redis_server.port == port
        assert sorted(client.keys("*")) == ["changed", "counter", "kept"]
        assert client.get("changed") == "before"
        assert client.incr("counter") == 4  # went back to 3


@pytest.mark.parametrize("method", ["pause", "sigstop"])
def test_redis_hang_times_clients_out_with_connections_open_until_resume(
    redis_server: RedisServer, method: HangMethod
) -> None:
    with (
        socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as raw,
        redis_server.client(socket_timeout=0.5) as client,
    ):
        raw.sendall(PING)
        assert raw.recv(64) == b"+PONG\r\n"
        assert client.ping() is True

        redis_server.hang(method=method)
        assert redis_server.hung == method
        error, elapsed = timed(client.ping)
        assert isinstance(error, redis.TimeoutError), error
        assert 0.4 < elapsed < 1.5
        with redis_server.client(socket_timeout=0.3) as fresh:  # a new connection too
            error, _ = timed(fresh.ping)
        assert isinstance(error, redis.TimeoutError), error
        assert redis_server.running

        raw.sendall(PING)
        raw.settimeout(0.3)
        with pytest.raises(TimeoutError):  # no reply, and no EOF: the connection is open
            raw.recv(64)

        redis_server.resume()
        assert redis_server.hung is None
        raw.settimeout(2)
        assert raw.recv(64) == b"+PONG\r\n"  # the PING sent during the hang, on the same connection
        assert client.ping() is True


@pytest.mark.parametrize(("method", "applied"), [("pause", False), ("sigstop", True)])
def test_redis_a_write_that_timed_out_is_dropped_by_pause_but_applied_by_sigstop(
    redis_server: RedisServer, method: HangMethod, applied: bool
) -> None:
    with redis_server.client(socket_timeout=0.3) as client:
        client.set("n", 0)
        redis_server.hang(method=method)
        with pytest.raises(redis.TimeoutError):
            client.incr("n")  # redis-py closes the connection on the timeout
        time.sleep(0.1)  # and Redis sees it closed before the hang ends
        redis_server.resume()
        assert client.get("n") == ("1" if applied else "0")


@pytest.mark.parametrize("method", ["pause", "sigstop"])
def test_redis_hang_for_a_while_ends_by_itself(redis_server: RedisServer, method: HangMethod) -> None:
    with redis_server.client(socket_timeout=3) as client:
        redis_server.hang(0.5, method=method)
        error, elapsed = timed(client.ping)
        assert error is None
        assert 0.3 < elapsed < 1.5
        wait_until(lambda: redis_server.hung is None, timeout=1)


def test_redis_close_leaves_nothing(redis_server: RedisServer) -> None:
    server = redis_server  # closing twice (here, then the fixture) is harmless
    pid, directory = server.pid, server.directory
    assert pid is not None
    server.hang(method="sigstop")
    server.close()
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------------- PostgreSQL


def _refused_fast(cluster: PostgresCluster) -> None:
    """A connection attempt is refused at once."""
    error, elapsed = timed(lambda: cluster.connect().close())
    assert isinstance(error, psycopg.OperationalError), error
    assert "refused" in str(error)
    assert elapsed < 0.5


def test_postgres_stop_start_keeps_the_data_on_the_same_port(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database("faults")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres_cluster.port}/faults"
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE t (n int)"))
            conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1), (2)"))

        postgres_cluster.stop()
        assert not postgres_cluster.running
        _refused_fast(postgres_cluster)

        postgres_cluster.start()
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT sum(n) FROM t")).scalar_one() == 3
    finally:
        engine.dispose()


def test_postgres_kill_then_start_recovers(postgres_cluster: PostgresCluster) -> None:
    with postgres_cluster.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (42)")
    with postgres_cluster.connect() as idle:
        pid = postgres_cluster.pid
        assert pid is not None
        postgres_cluster.kill()
        assert not postgres_cluster.running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped, not a zombie
        with pytest.raises(psycopg.OperationalError):  # its backend exited with the postmaster
            idle.execute("SELECT 1")
    _refused_fast(postgres_cluster)

    postgres_cluster.start()
    with postgres_cluster.connect() as conn:
        assert conn.execute("SELECT n FROM t").fetchone() == (42,)
    assert "automatic recovery in progress" in postgres_cluster.log_path.read_text()


def test_postgres_restart_immediate_recovers(postgres_cluster: PostgresCluster) -> None:
    with postgres_cluster.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (7)")
    postgres_cluster.restart("immediate")
    with postgres_cluster.connect() as conn:
        assert conn.execute("SELECT n FROM t").fetchone() == (7,)


# ---------------------------------------------------------------------------- embedauth serve


def test_serve_process_answers_with_its_settings_and_stops(redis_server: RedisServer) -> None:
    env = {"EMBEDAUTH_STORAGE_TIMEOUT": "0.5", "EMBEDAUTH_MAX_STALENESS": "7"}
    with ServeProcess(redis_server.url(prefix="serve"), env=env) as served:
        health = httpx.get(served.url("/healthz"), timeout=5)
        assert health.status_code == 200, health.text
        assert health.json()["revocations"]["max_staleness"] == 7.0

        redis_server.kill()
        health = httpx.get(served.url("/healthz"), timeout=5)
        assert health.status_code == 503, health.text
        assert health.json()["storage"]["reachable"] is False

        assert served.stop() is not None
        assert not served.running
        assert f"serving on {served.base_url}" in served.output()


# ---------------------------------------------------------------------------- the watchdog

CRASHING_TEST = """
import os, sys
from tests.faults.servers import RedisServer
server = RedisServer()
server.hang(method="sigstop")
print(server.pid, server.directory, flush=True)
sys.stdin.read()  # until killed
"""


def test_a_test_process_killed_outright_leaves_nothing_behind() -> None:
    if redis_unavailable() is not None:
        pytest.skip(str(redis_unavailable()))
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_TEST],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(PYTHONPATH=str(REPO)),
    )
    try:
        assert child.stdout is not None
        pid, directory = child.stdout.readline().split()
        assert Path(directory).is_dir() and _alive(int(pid))
    finally:
        child.kill()
        child.communicate()
    wait_until(lambda: not _alive(int(pid)) and not Path(directory).exists(), timeout=5)
