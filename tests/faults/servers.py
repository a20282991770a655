"""Servers of the fault tests' own, to kill, hang, stop and restore: never the shared ones.

:class:`RedisServer` runs a ``redis-server`` and :class:`PostgresCluster` a throw-away PostgreSQL
cluster, each on a free loopback port with a temporary directory of its own, and each restarts on the
*same* port, so that a client keeps its URL across a crash. :class:`ServeProcess` runs
``embedauth serve`` over a storage URL. All three are context managers; ``close()`` leaves no
process and no directory behind: an ``atexit`` hook closes whatever an interrupted run left open, and a
watchdog child process cleans up after a test process that dies without running it (SIGKILL, a CI
timeout's SIGTERM).
Linux only: process states come from ``/proc``.

What :meth:`RedisServer.hang` leaves clients seeing
---------------------------------------------------

Both methods keep the server process alive and every TCP connection open: nothing is closed or
reset, and a client only ever sees its reads time out (redis-py: ``redis.exceptions.TimeoutError``
after ``socket_timeout``). They differ in what else goes on:

``method="pause"`` (``CLIENT PAUSE <ms> ALL``)
    Redis keeps running its event loop. New TCP connections are accepted at once, but every
    command, on old and new connections alike, is held unanswered: PING, AUTH/HELLO/SELECT,
    SUBSCRIBE, and PUBLISH (so subscribers stay subscribed and receive nothing). Redis does not
    expire or evict keys while paused. ``CLIENT UNPAUSE`` is held too (Redis 7 pauses every
    ordinary client, a new one as well), so :meth:`hang` first opens a ``MONITOR`` connection,
    which Redis flags as a replica and never pauses, and :meth:`resume` sends ``CLIENT UNPAUSE``
    on it. That connection is visible in ``CLIENT LIST`` (flag ``O``) and
    ``connected_clients`` until the hang ends. When the pause ends, the held commands of the
    connections still open run in the order they arrived and their replies go out; a command whose
    client gave up and closed its connection meanwhile (redis-py does on a timeout) is dropped,
    never run: a timed-out ``INCR`` has not happened.

``method="sigstop"`` (``SIGSTOP``, then ``SIGCONT``)
    The process is frozen: no event loop, no timers. The kernel still completes TCP handshakes up
    to the listen backlog (Redis asks for 511, capped by ``net.core.somaxconn``), so a connect
    succeeds and then its reads time out; beyond the backlog SYNs are dropped and connects time
    out. Bytes sent are acknowledged by the kernel and wait in the socket buffers. On ``SIGCONT``
    Redis accepts the waiting connections and runs what was sent, in order, *even for a client
    that timed out and closed its connection meanwhile*: a timed-out ``INCR`` has happened after
    all. Time went on meanwhile, so keys whose TTL passed during the stop expire when next touched.

A new redis-py connection sends ``CLIENT SETINFO`` before the first command, so with either method
it fails in that handshake (``Timeout reading from socket``) and its command is never sent.

``hang(seconds)`` ends by itself after ``seconds`` (the pause's own duration, or a timer that sends
``SIGCONT``); ``hang()`` lasts until :meth:`RedisServer.resume`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

import httpx
import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import REPO, child_env
from tests.integration.conftest import free_port as _any_free_port

__all__ = [
    "HangMethod",
    "PostgresCluster",
    "RedisServer",
    "ServeProcess",
    "ServerError",
    "free_port",
    "postgres_unavailable",
    "redis_unavailable",
    "wait_until",
]

T = TypeVar("T")
HangMethod = Literal["pause", "sigstop"]

HOST = "127.0.0.1"
START_ATTEMPTS = 5  # fresh ports tried when the first start finds its port taken
_PAUSE_FOREVER_MS = 24 * 3600 * 1000
_PR_SET_CHILD_SUBREAPER = 36


class ServerError(RuntimeError):
    """A server of ours did not start, stop or answer as it should (the message has its log)."""


# ---------------------------------------------------------------------------- helpers


_reserved_ports: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now, and none of our live servers owns.

    A server that is killed keeps its port reserved here, so that a later ``free_port()`` in this
    process cannot hand it to someone else before the server starts again on it.
    """
    while True:
        port = _any_free_port()
        if port not in _reserved_ports:
            return port


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    ignore: tuple[type[BaseException], ...] = (),
    message: str | None = None,
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns something truthy; return that.

    Exceptions of the types in ``ignore`` count as a falsy result. After ``timeout`` seconds,
    raise :class:`TimeoutError` (with ``message``, and the last ignored exception as its cause).
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            what = message or f"{getattr(predicate, '__name__', predicate)!s} did not become true"
            raise TimeoutError(f"{what} within {timeout} s") from last
        time.sleep(interval)


def _process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (``R``, ``S``, ``T``, ``Z``, ...); None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    return _process_state(pid) not in {None, "Z", "X"}


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited, reaping it if it is our child; whether it did in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not ours: someone else reaps it
            if not _alive(pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _tail(path: Path, offset: int = 0, limit: int = 4000) -> str:
    """What ``path`` holds after ``offset`` (its last ``limit`` characters), for error messages."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            text = file.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text[-limit:] if len(text) > limit else text


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class _Closable(Protocol):
    def close(self) -> None: ...


_live: set[_Closable] = set()  # every server not closed yet (strong references: none is forgotten)


@atexit.register
def _close_leftovers() -> None:
    """Close what a test left open (an interrupted run), so that no server outlives the tests; then
    let the watchdog go."""
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.close()
    _watchdog.stop()


class _Watchdog:
    """A child process (``tests/faults/watchdog.py``) that cleans up after this one if it dies without
    closing its servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def tell(self, sign: Literal["+", "-"], kind: Literal["pid", "pg", "dir"], value: object) -> None:
        """Register (``+``) or forget (``-``) a process ID, a cluster's data directory or a directory."""
        with self._lock:
            if self._process is None:
                if sign == "-":
                    return
                self._process = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("watchdog.py"))],
                    stdin=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # a Ctrl-C to the tests' process group spares it
                )
            assert self._process.stdin is not None
            with contextlib.suppress(OSError):
                self._process.stdin.write(f"{sign} {kind} {value}\n")
                self._process.stdin.flush()

    def stop(self) -> None:
        """Close its stdin (it cleans up what is still registered) and wait for it."""
        with self._lock:
            if self._process is not None:
                assert self._process.stdin is not None
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=30)
                self._process = None


_watchdog = _Watchdog()


class _Managed:
    """Context-manager support: ``with X() as x`` closes ``x`` at the end."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------- Redis


def redis_unavailable() -> str | None:
    """Why :class:`RedisServer` cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH"
    return None


class _Monitor:
    """A ``MONITOR`` connection: Redis never pauses it, so it can send ``CLIENT UNPAUSE``."""

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self._sock = socket.create_connection((HOST, port), timeout=timeout)
        self._buffer = b""
        try:
            self._send("MONITOR")
            self._expect_ok()
        except BaseException:
            self.close()
            raise

    def _send(self, *words: str) -> None:
        parts = [f"*{len(words)}\r\n".encode()]
        for word in words:
            data = word.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(parts))

    def _expect_ok(self) -> None:
        # Monitor lines start with "+<timestamp> ["; a reply "+OK" is a line of its own.
        while True:
            lines = self._buffer.split(b"\r\n")
            for index, line in enumerate(lines[:-1]):
                if line == b"+OK":
                    self._buffer = b"\r\n".join(lines[index + 1 :])
                    return
                if line.startswith(b"-"):
                    raise ServerError(f"redis refused on the MONITOR connection: {line.decode()}")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ServerError("redis closed the MONITOR connection")
            self._buffer += chunk

    def unpause(self) -> None:
        """``CLIENT UNPAUSE``, answered at once even while every other client is paused."""
        self._send("CLIENT", "UNPAUSE")
        self._expect_ok()

    def close(self) -> None:
        self._sock.close()


class RedisServer(_Managed):
    """A ``redis-server`` of our own on a free loopback port, in a temporary directory.

    Started at construction (``--save "" --appendonly no``: nothing is persisted unless a method
    says so) and answering PING. The directory holds ``redis.log`` and, only while a method needs
    it, ``dump.rdb``; snapshots go to ``snapshots/``. The port never changes, so URLs stay valid
    across :meth:`kill`/:meth:`start`, :meth:`restart` and :meth:`restore`.
    """

    def __init__(
        self, *, save: str = "", args: Sequence[str] = (), start_timeout: float = 10.0, executable: str = ""
    ) -> None:
        self.executable = executable or shutil.which("redis-server") or "redis-server"
        self.save = save
        self.args = tuple(args)
        self.start_timeout = start_timeout
        self.directory = Path(tempfile.mkdtemp(prefix="embedauth-redis-"))
        _watchdog.tell("+", "dir", self.directory)
        self.log_path = self.directory / "redis.log"
        self.rdb_path = self.directory / "dump.rdb"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._snapshots = 0
        self._lock = threading.RLock()
        self._hung: HangMethod | None = None
        self._hang_generation = 0
        self._hang_timer: threading.Timer | None = None
        self._monitor: _Monitor | None = None
        self._pause_deadline: float | None = None
        _live.add(self)
        try:
            for attempt in range(START_ATTEMPTS):
                self.port = free_port()
                _reserved_ports.add(self.port)
                try:
                    self.start()
                    break
                except _PortTaken:
                    _reserved_ports.discard(self.port)
                    if attempt == START_ATTEMPTS - 1:
                        raise
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<RedisServer {HOST}:{self.port} pid={self.pid} dir={self.directory}>"

    # ------------------------------------------------------------------ addresses and clients

    def url(self, prefix: str | None = None, db: int = 0) -> str:
        """``redis://127.0.0.1:PORT/DB``, with ``?prefix=PREFIX`` (embedauth's key prefix) if given."""
        base = f"redis://{HOST}:{self.port}/{db}"
        return base if prefix is None else f"{base}?prefix={prefix}"

    def client(self, *, socket_timeout: float = 2.0, **options: Any) -> redis.Redis:
        """A redis-py client of this server (text replies, no retries); close it after use."""
        options.setdefault("socket_connect_timeout", socket_timeout)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        options.setdefault("decode_responses", True)
        return redis.Redis(host=HOST, port=self.port, socket_timeout=socket_timeout, **options)

    @property
    def pid(self) -> int | None:
        """The server's process ID while it runs."""
        return self.process.pid if self.running and self.process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may be hung)."""
        return self.process is not None and self.process.poll() is None

    @property
    def hung(self) -> HangMethod | None:
        """How the server is hung right now, or None."""
        return self._hung

    # ------------------------------------------------------------------ life cycle

    def _argv(self) -> list[str]:
        return [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--dir",
            str(self.directory),
            "--dbfilename",
            self.rdb_path.name,
            "--save",
            self.save,
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_path),
            *self.args,
        ]

    def start(self) -> None:
        """Start the server on its port, loading ``dump.rdb`` if there is one; wait for PING."""
        if self.running:
            raise ServerError(f"{self!r} is already running")
        offset = _size(self.log_path)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.directory
            )
        _watchdog.tell("+", "pid", self.process.pid)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                _watchdog.tell("-", "pid", self.process.pid)
                text = _tail(self.log_path, offset)
                error = _PortTaken if "Address already in use" in text else ServerError
                raise error(
                    f"redis-server on port {self.port} exited with {self.process.returncode}:\n{text}"
                )
            if self._answers():
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise ServerError(
                    f"redis-server on port {self.port} did not answer PING within {self.start_timeout} s:\n"
                    f"{_tail(self.log_path, offset)}"
                )
            time.sleep(0.01)

    def _answers(self, timeout: float = 0.5) -> bool:
        client = self.client(socket_timeout=timeout)
        try:
            return bool(client.ping())
        except redis.RedisError:  # refused, still loading the rdb, or hung
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (it may be hung) and wait for it to exit; its data is lost."""
        self._end_hang()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            _watchdog.tell("-", "pid", self.process.pid)

    def stop(self, *, save: bool = False) -> None:
        """Stop gracefully: ``SHUTDOWN NOSAVE`` (``SAVE`` with ``save=True``), else SIGTERM, then SIGKILL.

        A hung server is resumed first.
        """
        if not self.running:
            return
        assert self.process is not None
        if self._hung is not None:
            self.resume()
        client = self.client(socket_timeout=2.0)
        try:
            client.shutdown(save=save, nosave=not save)
        except redis.RedisError:
            self.process.terminate()
        finally:
            client.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _watchdog.tell("-", "pid", self.process.pid)

    def restart(self, empty: bool = True) -> None:
        """Stop and start again on the same port: without data (``empty``), else with all of it."""
        if empty:
            self.stop()
            self.rdb_path.unlink(missing_ok=True)
            self.start()
        else:
            self.stop(save=True)
            self.start()
            self.rdb_path.unlink(missing_ok=True)

    def snapshot(self) -> Path:
        """``SAVE`` now, and move the rdb file to a new snapshot file (returned) for :meth:`restore`."""
        if self._hung is not None:
            raise ServerError("cannot snapshot a hung server")
        client = self.client(socket_timeout=30.0)
        try:
            client.save()
        finally:
            client.close()
        (self.directory / "snapshots").mkdir(exist_ok=True)
        self._snapshots += 1
        target = self.directory / "snapshots" / f"snapshot-{self._snapshots}.rdb"
        shutil.move(self.rdb_path, target)
        return target

    def restore(self, snapshot: Path) -> None:
        """Kill the server and start it on the same port with exactly the data of ``snapshot``.

        Everything goes back: keys, values, TTLs (as absolute times) and counters.
        """
        self.kill()
        shutil.copyfile(snapshot, self.rdb_path)
        try:
            self.start()
        finally:
            self.rdb_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ hanging

    def hang(self, seconds: float | None = None, *, method: HangMethod = "pause") -> None:
        """Make the server stop answering, keeping the process and its connections alive.

        ``seconds``: end by itself after that long; None: until :meth:`resume`. See the module
        docstring for what clients see with each ``method``.
        """
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be positive")
        with self._lock:
            if not self.running or self.process is None:
                raise ServerError(f"{self!r} is not running")
            if self._hung is not None:
                raise ServerError(f"{self!r} is already hung ({self._hung})")
            if method == "pause":
                self._monitor = _Monitor(self.port)
                millis = _PAUSE_FOREVER_MS if seconds is None else max(1, round(seconds * 1000))
                client = self.client()
                try:
                    client.client_pause(millis, all=True)  # CLIENT PAUSE <ms> (ALL is the default)
                except BaseException:
                    self._monitor.close()
                    self._monitor = None
                    raise
                finally:
                    client.close()
                self._pause_deadline = time.monotonic() + millis / 1000
            elif method == "sigstop":
                self.process.send_signal(signal.SIGSTOP)
                wait_until(
                    lambda: _process_state(self.process.pid) in {"T", "t"} if self.process else True,
                    timeout=5.0,
                    interval=0.002,
                    message="redis-server did not stop on SIGSTOP",
                )
            else:
                raise ValueError(f"unknown hang method {method!r}")
            self._hung = method
            self._hang_generation += 1
            if seconds is not None:
                timer = threading.Timer(seconds, self._hang_expired, args=(self._hang_generation,))
                timer.daemon = True
                self._hang_timer = timer
                timer.start()

    def _hang_expired(self, generation: int) -> None:
        with self._lock:
            if self._hung is not None and generation == self._hang_generation:
                # The pause has ended by itself; a stopped process needs its SIGCONT.
                self._end_hang(cancel_timer=False)

    def resume(self) -> None:
        """End a hang now and wait until the server answers PING again."""
        with self._lock:
            method = self._hung
            if method is None:
                return
            if method == "pause":
                assert self._monitor is not None
                try:
                    self._monitor.unpause()
                except (OSError, ServerError) as exc:
                    # Unpausing failed: the pause ends by itself at its deadline, if that is near.
                    remaining = (self._pause_deadline or 0) - time.monotonic()
                    if remaining > 30:
                        raise ServerError(f"could not unpause redis ({exc}); it stays paused") from exc
                    time.sleep(max(0.0, remaining))
            self._end_hang()
        wait_until(self._answers, timeout=5.0, interval=0.01, message="redis did not answer after resume()")

    def _end_hang(self, *, cancel_timer: bool = True) -> None:
        """Forget the hang: cancel its timer, close the monitor, SIGCONT a stopped process."""
        with self._lock:
            if cancel_timer and self._hang_timer is not None:
                self._hang_timer.cancel()
            self._hang_timer = None
            if self._monitor is not None:
                self._monitor.close()
                self._monitor = None
            if self._hung == "sigstop" and self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)
            self._hung = None
            self._pause_deadline = None

    def close(self) -> None:
        """Kill the server and delete its directory (snapshots too)."""
        self.kill()
        _reserved_ports.discard(self.port)
        shutil.rmtree(self.directory, ignore_errors=True)
        _watchdog.tell("-", "dir", self.directory)
        _live.discard(self)


class _PortTaken(ServerError):
    """The port picked was taken by the time the server bound it."""


# ---------------------------------------------------------------------------- PostgreSQL


def _pg_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``$EMBEDAUTH_TEST_PG_BIN``, Debian's newest, or PATH."""
    if "EMBEDAUTH_TEST_PG_BIN" in os.environ:
        return Path(os.environ["EMBEDAUTH_TEST_PG_BIN"])

    def version(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for candidate in debian:
        if (candidate / "initdb").is_file():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_unavailable(user: str = "postgres") -> str | None:
    """Why :class:`PostgresCluster` cannot run here, or None."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        return "initdb is neither under /usr/lib/postgresql/*/bin nor on PATH"
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (bin_dir / tool).is_file():
            return f"{bin_dir / tool} does not exist"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root, and there is no user {user!r} to run initdb as"
        if shutil.which("runuser") is None and shutil.which("su") is None:
            return "running as root, and neither runuser nor su is on PATH"
    return None


def _as_user(user: str, command: Sequence[str]) -> list[str]:
    """``command`` run as ``user`` when we are root (initdb and postgres refuse root), else as is."""
    if os.geteuid() != 0:
        return list(command)
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", "-s", "/bin/sh", user, "-c", " ".join(map(_quote, command))]


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(command: Sequence[str], *, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@functools.cache
def _template(bin_dir: Path, user: str) -> Path:
    """A data directory made by ``initdb`` once per test process, that clusters start as copies of."""
    directory = Path(tempfile.mkdtemp(prefix="embedauth-pg-template-"))
    _watchdog.tell("+", "dir", directory)

    @atexit.register
    def remove() -> None:
        shutil.rmtree(directory, ignore_errors=True)
        _watchdog.tell("-", "dir", directory)

    _chown(directory, user)
    data = directory / "data"
    done = _run(
        _as_user(
            user,
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        ),
        cwd=directory,
    )
    if done.returncode != 0:
        remove()
        raise ServerError(f"initdb exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\n# tests/faults/servers.py\ninclude_if_exists = 'embedauth.conf'\n")
    return data


@contextlib.contextmanager
def _adopting_orphans() -> Iterator[None]:
    """Make this process the child subreaper meanwhile, so that a daemon started now (the postmaster,
    which ``pg_ctl`` leaves behind) becomes our child: we can then reap it, and no zombie is left."""
    libc: ctypes.CDLL | None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            libc = None
    except (OSError, AttributeError):
        libc = None
    try:
        yield
    finally:
        if libc is not None:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


_subreaper_lock = threading.Lock()


class PostgresCluster(_Managed):
    """A throw-away PostgreSQL cluster on a free loopback port, in a temporary directory.

    Started at construction. Trust authentication (user ``postgres``), ``fsync = off``, small
    ``shared_buffers``, its unix socket in the directory, its log in ``postgres.log``. As root, its
    programs run as ``user`` (``runuser -u postgres --``). The port never changes, so URLs stay valid
    across :meth:`stop`/:meth:`start`, :meth:`kill` and :meth:`restart`; the data stays as well.
    """

    def __init__(
        self,
        *,
        user: str = "postgres",
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        bin_dir: Path | None = None,
    ) -> None:
        found = bin_dir or _pg_bin_dir()
        if found is None:
            raise ServerError(postgres_unavailable(user) or "initdb not found")
        self.bin_dir = found
        self.user = user if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.start_timeout = start_timeout
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "fsync": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
        } | dict(settings or {})
        self.directory = Path(tempfile.mkdtemp(prefix="embedauth-pg-"))
        self.data_dir = self.directory / "data"
        _watchdog.tell("+", "dir", self.directory)
        _watchdog.tell("+", "pg", self.data_dir)
        self.log_path = self.directory / "postgres.log"
        self.port = 0
        self._last_pid: int | None = None
        _live.add(self)
        try:
            _chown(self.directory, self.user)
            template = _template(self.bin_dir, self.user)
            copied = _run(
                _as_user(self.user, ["cp", "-a", str(template), str(self.data_dir)]), cwd=self.directory
            )
            if copied.returncode != 0:
                raise ServerError(f"copying the template cluster failed: {copied.stderr}")
            for attempt in range(START_ATTEMPTS):
                self.port = free_port()
                _reserved_ports.add(self.port)
                self._write_settings()
                try:
                    self.start()
                    break
                except _PortTaken:
                    _reserved_ports.discard(self.port)
                    if attempt == START_ATTEMPTS - 1:
                        raise
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<PostgresCluster {HOST}:{self.port} pid={self.pid} dir={self.directory}>"

    def _write_settings(self) -> None:
        lines = [f"{name} = {value}" for name, value in self.settings.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.directory}'"]
        path = self.data_dir / "embedauth.conf"
        path.write_text("\n".join(lines) + "\n")
        _chown(path, self.user)

    # ------------------------------------------------------------------ addresses and clients

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:PORT/DATABASE``."""
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **options: Any) -> psycopg.Connection[Any]:
        """A psycopg connection (``connect_timeout`` 2 s unless given); close it after use."""
        options.setdefault("connect_timeout", 2)
        return psycopg.connect(host=HOST, port=self.port, user="postgres", dbname=database, **options)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; its :meth:`url`."""
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _lock_file(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return []

    @property
    def pid(self) -> int | None:
        """The postmaster's process ID while it runs."""
        lines = self._lock_file()
        if not lines or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        if _alive(pid):
            return pid
        with contextlib.suppress(ChildProcessError):  # our child since start(): reap its zombie
            os.waitpid(pid, os.WNOHANG)
        return None

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.pid is not None

    # ------------------------------------------------------------------ life cycle

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data_dir), *args]
        return _run(_as_user(self.user, command), cwd=self.directory, timeout=timeout + 10)

    def start(self) -> None:
        """``pg_ctl -w start`` on the same port with the same data (recovering after a crash)."""
        if self.running:
            raise ServerError(f"{self!r} is already running")
        if self._lock_file():  # left by a killed postmaster, which is gone (or a zombie)
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        offset = _size(self.log_path)
        with _subreaper_lock, _adopting_orphans():
            done = self._pg_ctl(
                "--log",
                str(self.log_path),
                "--wait",
                "--timeout",
                str(round(self.start_timeout)),
                "--silent",
                "start",
                timeout=self.start_timeout,
            )
        self._last_pid = self.pid
        if done.returncode != 0 or self._last_pid is None:
            text = _tail(self.log_path, offset)
            self.kill()
            error = (
                _PortTaken if "could not bind" in text or "Address already in use" in text else ServerError
            )
            raise error(f"pg_ctl start exited with {done.returncode}: {done.stdout}{done.stderr}\n{text}")

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """``pg_ctl -m MODE -w stop``: ``fast`` rolls back and checkpoints, ``immediate`` is a crash
        of every process at once (the next start recovers). A no-op when not running."""
        pid = self.pid
        if pid is None:
            return
        done = self._pg_ctl("--mode", mode, "--wait", "--timeout", "30", "--silent", "stop", timeout=30)
        if done.returncode != 0:
            raise ServerError(f"pg_ctl stop exited with {done.returncode}: {done.stdout}{done.stderr}")
        if not _wait_gone(pid, 10):
            raise ServerError(f"the postmaster {pid} did not exit after pg_ctl stop")

    def kill(self) -> None:
        """SIGKILL the postmaster and wait for it to exit. Its backends see it die and exit within
        milliseconds (their clients' connections close); stragglers are killed after 5 s."""
        pid = self.pid
        if pid is None:
            return
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 10):
            raise ServerError(f"the postmaster {pid} did not exit on SIGKILL")
        for child in children:
            if not _wait_gone(child, 5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
                _wait_gone(child, 5)

    def restart(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """:meth:`stop` (``mode``) then :meth:`start`."""
        self.stop(mode)
        self.start()

    def _drop_orphaned_segment(self) -> None:
        """Remove the SysV shared memory segment a killed postmaster leaves (a start would reuse it)."""
        lines = self._lock_file()
        if self.running or len(lines) < 7 or len(lines[6].split()) != 2 or self._last_pid is None:
            return
        shmid = lines[6].split()[1]
        with contextlib.suppress(FileNotFoundError):
            for row in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
                fields = row.split()
                # key shmid perms size cpid lpid nattch ...
                if fields[1] == shmid and fields[4] == str(self._last_pid) and fields[6] == "0":
                    _run(["ipcrm", "-m", shmid], cwd=self.directory)

    def close(self) -> None:
        """Stop the cluster (``immediate``; killed if that fails) and delete its directory."""
        try:
            self.stop("immediate")
        except (ServerError, subprocess.TimeoutExpired):
            self.kill()
        self._drop_orphaned_segment()
        _reserved_ports.discard(self.port)
        shutil.rmtree(self.directory, ignore_errors=True)
        _watchdog.tell("-", "pg", self.data_dir)
        _watchdog.tell("-", "dir", self.directory)
        _live.discard(self)


# ---------------------------------------------------------------------------- embedauth serve


class ServeProcess(_Managed):
    """``python -m embedauth.cli --storage URL serve`` on a free loopback port, as a subprocess.

    Its environment is this one without any ``EMBEDAUTH_*`` variable (argon2 at its cheapest and the
    tests' key-encryption key, as ``tests.integration`` does), then ``env``: pass settings as
    ``EMBEDAUTH_<SETTING>`` (``EMBEDAUTH_STORAGE_TIMEOUT``, ``EMBEDAUTH_MAX_STALENESS``, ...).
    Started at construction, and ready once ``GET /healthz`` answers with any status. Its stdout and
    stderr go to a file: :meth:`output` for assertion messages.
    """

    def __init__(
        self,
        storage_url: str,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        framework: Literal["starlette", "flask"] = "starlette",
        issuer: str | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self.storage_url = storage_url
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.issuer = issuer or self.base_url
        self.framework = framework
        self.start_timeout = start_timeout
        self.env = child_env(EMBEDAUTH_KEY_ENCRYPTION_KEY=str(TEST_SETTINGS["key_encryption_key"])) | dict(
            env or {}
        )
        self.directory = Path(tempfile.mkdtemp(prefix="embedauth-serve-"))
        _watchdog.tell("+", "dir", self.directory)
        self.log_path = self.directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = time.monotonic()  # of the first start
        self.starts = 0
        _reserved_ports.add(self.port)
        _live.add(self)
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<ServeProcess {self.base_url} over {self.storage_url}>"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``/healthz``, ``/oauth/token``, ...)."""
        return self.base_url + path

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return _tail(self.log_path, limit=1_000_000)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (again, on the same port) and wait until ``GET /healthz`` answers."""
        if self.running:
            raise ServerError(f"{self!r} is already running")
        argv = [sys.executable, "-m", "embedauth.cli", "--storage", self.storage_url, "serve"]
        argv += [
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--issuer",
            self.issuer,
            "--framework",
            self.framework,
        ]
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, cwd=REPO
            )
        self.process = process
        self.starts += 1
        _watchdog.tell("+", "pid", process.pid)

        def answers() -> bool:
            if process.poll() is not None:
                raise ServerError(
                    f"embedauth serve exited with {process.returncode} before answering:\n{self.output()}"
                )
            # Any status will do; a storage that hangs makes /healthz take up to storage_timeout.
            httpx.get(self.url("/healthz"), timeout=httpx.Timeout(30.0, connect=0.5))
            return True

        try:
            wait_until(answers, self.start_timeout, 0.05, ignore=(httpx.TransportError,))
        except TimeoutError:
            self.stop()
            raise ServerError(
                f"embedauth serve did not answer GET /healthz within {self.start_timeout} s:\n{self.output()}"
            ) from None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT (uvicorn's graceful shutdown), SIGKILL after ``timeout`` s; the exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _watchdog.tell("-", "pid", process.pid)
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL the process; the exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        status = process.wait()
        _watchdog.tell("-", "pid", process.pid)
        return status

    def close(self) -> None:
        """Stop the process and delete its log."""
        self.stop()
        _reserved_ports.discard(self.port)
        shutil.rmtree(self.directory, ignore_errors=True)
        _watchdog.tell("-", "dir", self.directory)
        _live.discard(self)
