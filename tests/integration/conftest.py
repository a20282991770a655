"""A served embedauth: ``embedauth serve`` as a subprocess on a free loopback port, once per framework.

The :func:`served` fixture is session-scoped and parametrized over both frameworks, so the whole
integration suite starts two servers. Each has its own SQLite file; registrations are created
in-process with an :class:`~embedauth.EmbedAuth` over the same file (the server sees them at once:
it reads them from storage), or with the command (:meth:`Served.cli`), as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

from embedauth import EmbedAuth
from tests.conftest import TEST_SETTINGS
from tests.services import unavailable

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"
FRAMEWORKS = ("starlette", "flask")
PERMISSIONS = {"devices:read": "List devices", "devices:write": "Change devices"}
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
NPM_TIMEOUT = 180.0


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any ``EMBEDAUTH_*`` setting of the caller's, and argon2 at its cheapest.

    ``Settings.from_env`` reads ``EMBEDAUTH_ARGON2_TIME_COST`` and ``EMBEDAUTH_ARGON2_MEMORY_KIB``:
    the hashes the server and the command write are then as cheap as the in-process ones.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("EMBEDAUTH_")}
    env["EMBEDAUTH_ARGON2_TIME_COST"] = str(TEST_SETTINGS["argon2_time_cost"])
    env["EMBEDAUTH_ARGON2_MEMORY_KIB"] = str(TEST_SETTINGS["argon2_memory_kib"])
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m embedauth.cli ARGS``; the result whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "embedauth.cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=env or child_env(),
        cwd=REPO,
        check=False,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it does not exit; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------- keys and certificates


# ---------------------------------------------------------------------------- the served instance


@dataclass(frozen=True, slots=True)
class Client:
    """A registration's client ID and its first secret."""

    client_id: str
    client_secret: str = field(repr=False)
    tenant: str
    scopes: tuple[str, ...]


@dataclass
class Served:
    """``embedauth serve`` running on ``base_url`` over ``storage_url``."""

    framework: str
    base_url: str
    storage_url: str
    auth: EmbedAuth
    process: subprocess.Popen[bytes]
    log_path: Path
    _count: int = 0

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def token_url(self) -> str:
        return self.url("/oauth/token")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> Any:
        """``embedauth --storage URL ARGS --json`` against this instance's storage; its JSON output."""
        done = run_cli("--storage", self.storage_url, *args, "--json")
        assert done.returncode == 0, f"embedauth {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout)

    def register(self, *scopes: str, tenant: str = "site-1") -> Client:
        """A new registration (in-process, over the same SQLite file) with ``scopes``."""
        self._count += 1
        created = self.auth.registrations.create(
            tenant=tenant, name=f"{self.framework} client {self._count}", scopes=list(scopes)
        )
        return Client(created.client_id, created.client_secret, tenant, tuple(scopes))

    def token(self, client: Client, scope: str | None = None) -> str:
        """An access token for ``client`` (``client_secret_basic``, plain HTTP)."""
        data = {"grant_type": "client_credentials"} | ({} if scope is None else {"scope": scope})
        response = httpx.post(self.token_url, data=data, auth=(client.client_id, client.client_secret))
        assert response.status_code == 200, response.text
        access_token: str = response.json()["access_token"]
        return access_token


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=1.0) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"embedauth serve exited with {process.returncode} before answering:\n"
                    f"{log_path.read_text(errors='replace')}",
                    pytrace=False,
                )
            try:
                if http.get(base_url + "/demo/public").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                stop(process)
                pytest.fail(
                    f"embedauth serve did not answer GET /demo/public within {START_TIMEOUT} s:\n"
                    f"{log_path.read_text(errors='replace')}",
                    pytrace=False,
                )
            time.sleep(0.05)


@pytest.fixture(scope="session", params=FRAMEWORKS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``embedauth serve --framework F`` on a free port, with the permissions ``devices:read`` and
    ``devices:write``; stopped (SIGTERM, then SIGKILL) after the session."""
    framework = str(request.param)
    directory = tmp_path_factory.mktemp(f"served-{framework}")
    storage_url = f"sqlite:///{directory / 'e.db'}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with EmbedAuth(storage_url, issuer=base_url, **TEST_SETTINGS) as auth:
        for name, description in PERMISSIONS.items():
            auth.permissions.add(name, description=description)
        log_path = directory / "serve.log"
        with log_path.open("w") as log:
            process = _start(storage_url, port, framework, log)
            try:
                _wait_until_ready(process, base_url, log_path)
                yield Served(framework, base_url, storage_url, auth, process, log_path)
            finally:
                stop(process)


def _start(
    storage_url: str, port: int, framework: str, log: TextIO, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embedauth.cli",
            "--storage",
            storage_url,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--framework",
            framework,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env or child_env(),
        cwd=REPO,
    )


# ---------------------------------------------------------------------------- Node's openid-client


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with ``openid-client`` installed in tests/integration/node.

    Installs it once (``npm install``) when ``node_modules/openid-client`` is missing. Without node
    or npm, or when the install fails: skip, or fail under ``EMBEDAUTH_REQUIRE_SERVICES=1``.
    """
    node_path, npm_path = shutil.which("node"), shutil.which("npm")
    if node_path is None or npm_path is None:
        unavailable("node", "node or npm is not on PATH", "install Node.js 20 and npm")
        raise AssertionError("unreachable")  # unavailable() skips or fails
    if not (NODE_DIR / "node_modules" / "openid-client" / "package.json").is_file():
        try:
            done = subprocess.run(
                [npm_path, "install", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            unavailable("node", f"npm install took longer than {NPM_TIMEOUT:.0f} s")
            raise AssertionError("unreachable") from None
        if done.returncode != 0:
            unavailable("node", f"npm install exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return node_path
