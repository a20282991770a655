"""HTTP throughput, measured with wrk: DESIGN.md's token-endpoint and bearer-middleware ratios, in one run.

* **token endpoint** (per storage: SQLite, PostgreSQL, Redis): requests/s of ``POST /oauth/token``
  (``client_credentials``, HTTP Basic, a client that has authenticated before, so its secret is in the
  verified-secret cache) against ``GET /demo/public`` on the same server: the real command,
  ``python -m embedauth.cli --storage URL serve --port P``. A backend whose server cannot be reached
  is skipped, with the reason printed. Target: at least 50%.
* **Starlette bearer middleware**: ``GET /devices`` behind ``BearerMiddleware`` and
  ``requires_scopes("devices:read")`` (a valid token, verified from the cache after the first
  request) against the same endpoint bare, the same request (token header included) to each; uvicorn,
  one worker, httptools + uvloop, no access log (``benchmarks/http_app.py``). Target: at least 90%.
* **Starlette structure** (rows without a target of their own, explaining the one above): the same
  bare endpoint behind a middleware that only leaves a fixed caller in the scope (``layer``), and
  the same with ``requires_scopes`` (``layer-requires``), against the bare app: what one middleware
  and one decorator cost before any header is read or token verified.
* **Flask bearer check**: the same, a Flask view with ``require_scopes("devices:read")`` against the
  same view bare, each under gunicorn with one sync worker. Target: at least 90%.

Method: wrk, one thread and 16 connections (two cores: the server gets one, wrk the other). Both
servers of a comparison run side by side; each is warmed (a first request checked for status 200,
then wrk for the warm-up time) before anything is measured. The two sides are then measured in
interleaved rounds (baseline then measured, then measured then baseline, and so on), so drift from
other load on the machine falls on both; the ratio is the median of the per-round ratios, the
requests/s are each side's median. Many short rounds rather than a few long ones: each pair of
measurements is close in time, and the median sheds the rounds a burst of other load spoiled. A request wrk counts as non-2xx (or a socket error) fails the
measurement: the row says so and the run exits with status 1.

Run: ``python -m benchmarks.http`` (``--quick`` for a short run; ``--seconds``, ``--rounds``;
``--only sqlite,postgresql,redis,starlette,starlette-structure,flask``; ``--json PATH`` writes the figures). Needs ``wrk``
(``apt-get install wrk``). PostgreSQL and Redis come from ``EMBEDAUTH_TEST_POSTGRES_URL`` and
``EMBEDAUTH_TEST_REDIS_URL`` (the test suite's defaults otherwise); each run uses its own schema or
key prefix and removes it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.http_app import SCOPE
from embedauth import EmbedAuth
from embedauth.tokens.keys import new_key_encryption_key

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "http://127.0.0.1"
THREADS, CONNECTIONS = 1, 16
POSTGRES_URL = os.environ.get(
    "EMBEDAUTH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("EMBEDAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECTIONS = ("sqlite", "postgresql", "redis", "starlette", "starlette-structure", "flask")


class Skip(Exception):
    """A comparison that cannot run here (its server is unreachable); the message says why."""


class Failed(Exception):
    """A measurement that did not measure what it should: a non-2xx answer, a socket error, a dead server."""


# ---------------------------------------------------------------------------- requests and wrk


@dataclass(frozen=True)
class Target:
    """One request, sent over and over."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def lua(self) -> str:
        lines = [f"wrk.method = {json.dumps(self.method)}"]
        if self.body is not None:
            lines.append(f"wrk.body = {json.dumps(self.body)}")
        lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in self.headers]
        return "\n".join(lines) + "\n"

    def check(self) -> None:
        """One request; :class:`Failed` unless it answers 200."""
        data = None if self.body is None else self.body.encode()
        request = urllib.request.Request(self.url, data=data, method=self.method, headers=dict(self.headers))  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
                status = response.status
        except urllib.error.HTTPError as error:
            raise Failed(f"{self.method} {self.url} answered {error.code}: {error.read()[:300]!r}") from None
        if status != 200:
            raise Failed(f"{self.method} {self.url} answered {status}")


def wrk(target: Target, seconds: float) -> float:
    """Requests/s of ``target`` for ``seconds``; :class:`Failed` on any non-2xx answer or socket error."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(target.lua())
        script.flush()
        command = [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds:g}s",
            "-s",
            script.name,
            target.url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    output = done.stdout
    if done.returncode != 0:
        raise Failed(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        raise Failed(f"{bad.group(1)} non-2xx answers from {target.method} {target.url}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors and any(int(n) for n in errors.groups()):
        raise Failed(f"socket errors from {target.method} {target.url}: {errors.group(0)}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise Failed(f"no Requests/sec in wrk's output:\n{output}")
    return float(rate.group(1))


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server process of the run; ``banner`` is what it printed on starting (``embedauth serve``'s line)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    banner: str = ""


@contextlib.contextmanager
def server(
    command: Sequence[str], env: dict[str, str], port: int, ready_path: str, log: Path
) -> Iterator[Server]:
    """Start ``command`` (listening on ``port``), wait until ``ready_path`` answers, stop it after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), env=os.environ | env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise Failed(f"{command[2:4]} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url + ready_path, timeout=2).close()  # noqa: S310 - our own server
                break
            except urllib.error.HTTPError:
                break  # it answers: ready
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed(
                        f"{command[2:4]} did not answer within 60 s:\n{log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        banner = next((line for line in log.read_text().splitlines() if "serving on" in line), "")
        yield Server(url, process, log, banner)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def python() -> list[str]:
    return [sys.executable, "-W", "ignore"]


def pythonpath() -> dict[str, str]:
    """The environment a server needs to import this checkout's embedauth and benchmarks."""
    paths = [str(ROOT / "src"), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(paths)}


# ---------------------------------------------------------------------------- storage


@contextlib.contextmanager
def storage(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh storage URL of ``kind``, removed after; :class:`Skip` when its server is unreachable."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'bench-{secrets.token_hex(4)}.db'}"
    elif kind == "postgresql":
        import sqlalchemy

        schema = f"embedauth_bench_{secrets.token_hex(6)}"
        try:
            admin = sqlalchemy.create_engine(
                POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
            )
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means "unreachable"
            raise Skip(f"PostgreSQL unreachable at {POSTGRES_URL} ({type(exc).__name__})") from None
        try:
            yield POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + f"options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    elif kind == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
        try:
            client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to connect means "unreachable"
            raise Skip(f"Redis unreachable at {REDIS_URL} ({type(exc).__name__})") from None
        prefix = f"embedauth-bench-{secrets.token_hex(6)}"
        try:
            yield REDIS_URL + ("&" if "?" in REDIS_URL else "?") + f"prefix={prefix}"
        finally:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    else:
        raise ValueError(kind)


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    access_token: str

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()


def registration(url: str) -> Client:
    """A registration holding ``devices:read`` in ``url``, and an access token for it."""
    with EmbedAuth(url, issuer=ISSUER) as auth:
        auth.permissions.add(SCOPE)
        made = auth.registrations.create(tenant="bench", name="bench", scopes=[SCOPE])
        token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    return Client(made.client_id, made.client_secret, token)


# ---------------------------------------------------------------------------- comparisons


@dataclass
class Result:
    """One row of the table, and its rounds."""

    key: str
    measure: str
    baseline: str
    target: float | None
    """None: a row that explains another (no target of its own)."""
    rps: float | None = None
    baseline_rps: float | None = None
    ratio: float | None = None
    rounds: list[dict[str, float]] = field(default_factory=list)
    skipped: str | None = None
    failed: str | None = None
    stack: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None or self.target is None else self.ratio >= self.target


@dataclass(frozen=True)
class Options:
    seconds: float
    rounds: int
    warm: float


#: What a comparison opens: the measured request, its baseline, and a description of the stack.
Setup = Callable[[Path], contextlib.AbstractContextManager[tuple[Target, Target, str]]]


def measure(result: Result, setup: Setup, tmp: Path, options: Options) -> None:
    """Fill ``result`` from interleaved rounds of the two targets ``setup`` opens."""
    try:
        with setup(tmp) as (measured, baseline, stack):
            result.stack = stack
            for target in (baseline, measured):
                target.check()
                wrk(target, options.warm)
            ratios, rates, baselines = [], [], []
            for number in range(options.rounds):
                if number % 2 == 0:
                    base = wrk(baseline, options.seconds)
                    rate = wrk(measured, options.seconds)
                else:
                    rate = wrk(measured, options.seconds)
                    base = wrk(baseline, options.seconds)
                result.rounds.append({"rps": rate, "baseline_rps": base, "ratio": rate / base})
                ratios.append(rate / base)
                rates.append(rate)
                baselines.append(base)
            result.ratio = statistics.median(ratios)
            result.rps = statistics.median(rates)
            result.baseline_rps = statistics.median(baselines)
    except Skip as skip:
        result.skipped = str(skip)
    except Failed as failure:
        result.failed = str(failure)


def token_setup(kind: str) -> Setup:
    """``embedauth serve`` on a fresh storage of ``kind``: ``POST /oauth/token`` against ``GET /demo/public``."""

    @contextlib.contextmanager
    def setup(tmp: Path) -> Iterator[tuple[Target, Target, str]]:
        with storage(kind, tmp) as url:
            client = registration(url)
            port = free_port()
            command = [*python(), "-m", "embedauth.cli", "--storage", url, "serve", "--port", str(port)]
            with server(command, pythonpath(), port, "/demo/public", tmp / f"serve-{kind}.log") as running:
                token = Target(
                    running.url + "/oauth/token",
                    "POST",
                    (("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", client.basic)),
                    "grant_type=client_credentials",
                )
                stack = running.banner.split(": ", 1)[-1] if running.banner else "embedauth serve"
                yield token, Target(running.url + "/demo/public"), stack

    return setup


def _bearer_targets(bare: Server, protected: Server, client: Client) -> tuple[Target, Target]:
    header = (("Authorization", f"Bearer {client.access_token}"),)  # the same request to both
    return Target(protected.url + "/devices", headers=header), Target(bare.url + "/devices", headers=header)


@contextlib.contextmanager
def _bearer_setup(
    tmp: Path,
    server_name: str,
    command: Callable[[int], list[str]],
    stack_text: str,
    measured_kind: str = "protected",
) -> Iterator[tuple[Target, Target, str]]:
    """The bare app and ``measured_kind`` (``benchmarks.http_app``), each under ``command(port)``,
    on one SQLite store."""
    with storage("sqlite", tmp) as url:
        client = registration(url)
        with contextlib.ExitStack() as stack:
            running = {}
            for kind in ("bare", measured_kind):
                port = free_port()
                env = pythonpath() | {
                    "EMBEDAUTH_BENCH_APP": kind,
                    "EMBEDAUTH_STORAGE": url,
                    "EMBEDAUTH_ISSUER": ISSUER,
                }
                running[kind] = stack.enter_context(
                    server(command(port), env, port, "/", tmp / f"{server_name}-{kind}.log")
                )
            measured, baseline = _bearer_targets(running["bare"], running[measured_kind], client)
            yield measured, baseline, stack_text


def starlette_setup(measured_kind: str = "protected") -> Setup:
    """uvicorn (one worker, httptools + uvloop, no access log): the bare app and ``measured_kind``."""
    return lambda tmp: _bearer_setup(
        tmp,
        f"uvicorn-{measured_kind}",
        lambda port: [
            *python(),
            "-m",
            "uvicorn",
            "--factory",
            "benchmarks.http_app:create",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "uvicorn, 1 worker, httptools + uvloop, no access log",
        measured_kind,
    )


def flask_setup(tmp: Path) -> contextlib.AbstractContextManager[tuple[Target, Target, str]]:
    """gunicorn with one sync worker: the bare Flask app and the protected one."""
    return _bearer_setup(
        tmp,
        "gunicorn",
        lambda port: [
            *python(),
            "-m",
            "gunicorn",
            "-w",
            "1",
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.http_app:create_flask()",
        ],
        "gunicorn, 1 sync worker, no access log",
    )


STORAGE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "redis": "Redis"}


def comparisons() -> list[tuple[str, Result, Setup]]:
    """Every row: the ``--only`` section it belongs to, its result, and its setup."""
    rows: list[tuple[str, Result, Setup]] = []
    for kind, name in STORAGE_NAMES.items():
        token = Result(
            kind, f"`POST /oauth/token`, warm client, {name}", "`GET /demo/public`, same server", 0.5
        )
        rows.append((kind, token, token_setup(kind)))
    middleware = Result(
        "starlette", "`BearerMiddleware` + `requires_scopes`, Starlette", "same app, bare", 0.9
    )
    rows.append(("starlette", middleware, starlette_setup("protected")))
    # The protected app taken apart: what the structure alone costs, before any token is read.
    for kind, measure in (
        ("layer", "a middleware leaving a fixed caller in the scope, Starlette"),
        ("layer-requires", "the same + `requires_scopes`, Starlette"),
    ):
        rows.append(
            (
                "starlette-structure",
                Result(f"starlette-{kind}", measure, "same app, bare", None),
                starlette_setup(kind),
            )
        )
    rows.append(("flask", Result("flask", "`require_scopes`, Flask", "same app, bare", 0.9), flask_setup))
    return rows


# ---------------------------------------------------------------------------- output


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "?"


def table(results: Sequence[Result], options: Options) -> str:
    lines = [
        "### HTTP",
        "",
        "| measure | req/s | baseline | baseline req/s | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in results:
        target = "–" if r.target is None else f"≥ {r.target:.0%}"
        if r.ratio is not None and r.rps is not None and r.baseline_rps is not None:
            met = "–" if r.met is None else "yes" if r.met else "no"
            lines.append(
                f"| {r.measure} | {r.rps:.0f} | {r.baseline} | {r.baseline_rps:.0f} | {r.ratio:.0%} "
                f"| {target} | {met} |"
            )
        elif r.failed is not None:
            lines.append(f"| {r.measure} | – | {r.baseline} | – | – | {target} | FAILED |")
            notes.append(f"- {r.key}: FAILED: {r.failed}")
        else:
            notes.append(f"- {r.key}: skipped: {r.skipped}")
    stacks = {r.key: r.stack for r in results if r.stack}
    lines += [
        "",
        f"wrk {_wrk_version()}, {THREADS} thread, {CONNECTIONS} connections; {options.rounds} interleaved rounds "
        f"of {options.seconds:g} s per side (baseline first in even rounds, measured first in odd ones), "
        f"each server warmed {options.warm:g} s first; ratio = median of the per-round ratios, req/s = each "
        f"side's median. {os.cpu_count()} cores shared with wrk and whatever else runs.",
        f"Python {platform.python_version()}, uvicorn {_version('uvicorn')}, httptools {_version('httptools')}, "
        f"uvloop {_version('uvloop')}, Starlette {_version('starlette')}, gunicorn {_version('gunicorn')}, "
        f"Flask {_version('flask')}.",
    ]
    lines += [f"- {key}: {stack}" for key, stack in stacks.items()]
    return "\n".join(lines + notes) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: 2 s per measurement, 2 rounds")
    parser.add_argument("--seconds", type=float, help="seconds per measurement (default 3; --quick 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per comparison (default 8; --quick 2)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    options = Options(
        seconds=args.seconds or (2 if args.quick else 3),
        rounds=args.rounds or (2 if args.quick else 8),
        warm=1 if args.quick else 2,
    )
    wanted = set(SECTIONS if not args.only else args.only.split(","))
    if wanted - set(SECTIONS):
        parser.error(f"--only: unknown {', '.join(sorted(wanted - set(SECTIONS)))}")
    if "EMBEDAUTH_KEY_ENCRYPTION_KEY" not in os.environ:  # one for the run, inherited by every server
        os.environ["EMBEDAUTH_KEY_ENCRYPTION_KEY"] = new_key_encryption_key()
    results = []
    with tempfile.TemporaryDirectory(prefix="embedauth-http-") as tmp:
        for section, result, setup in comparisons():
            if section in wanted:
                measure(result, setup, Path(tmp), options)
                results.append(result)
    print(table(results, options), end="")
    if args.json:
        document: dict[str, Any] = {
            "wrk": {"threads": THREADS, "connections": CONNECTIONS, "version": _wrk_version()},
            "options": asdict(options),
            "results": [asdict(r) | {"met": r.met} for r in results],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
