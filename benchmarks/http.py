"""HTTP throughput under uvicorn, measured with wrk: DESIGN.md's two ratios, each from one run.

* bearer middleware: requests/s of ``GET /devices`` behind ``BearerMiddleware`` (a valid token,
  verified from the cache after the first request) against the same requests, same token header,
  to the same endpoint with no middleware;
* token endpoint: requests/s of ``POST /oauth/token`` (client_credentials, HTTP Basic, the secret
  already verified once, so argon2 is skipped) against ``GET /devices`` on the same server.

One uvicorn worker, one wrk thread with 16 connections (the machine has two cores: one each).
Run: ``python -m benchmarks.http`` (needs ``wrk``: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from embedauth import EmbedAuth

ISSUER = "http://127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(kind: str, storage: str) -> Iterator[str]:
    port = free_port()
    env = os.environ | {"EMBEDAUTH_BENCH_APP": kind, "EMBEDAUTH_STORAGE": storage, "EMBEDAUTH_ISSUER": ISSUER}
    command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.http_app:create", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).parent.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/devices", timeout=1).close()  # noqa: S310 - our own server
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wrk(url: str, seconds: int, script: str | None = None, header: str | None = None) -> float:
    command = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency"]
    if header:
        command += ["-H", header]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command += ["-s", lua.name]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/bench.db"
        with EmbedAuth(storage, issuer=ISSUER) as auth:
            auth.permissions.add("devices:read")
            made = auth.registrations.create(tenant="bench", name="bench", scopes=["devices:read"])
            token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
        basic = base64.b64encode(f"{made.client_id}:{made.client_secret}".encode()).decode()
        token_request = (
            'wrk.method = "POST"\n'
            'wrk.body = "grant_type=client_credentials"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            f'wrk.headers["Authorization"] = "Basic {basic}"\n'
        )
        bearer = f"Authorization: Bearer {token}"
        with server("plain", storage) as url:  # the same request: only the middleware differs
            plain = wrk(url + "/devices", args.seconds, header=bearer)
        with server("protected", storage) as url:
            protected = wrk(url + "/devices", args.seconds, header=bearer)
        with server("token", storage) as url:
            beside = wrk(url + "/devices", args.seconds)
            issued = wrk(url + "/oauth/token", args.seconds, script=token_request)
    print(f"uvicorn, 1 worker; wrk -t1 -c16 -d{args.seconds}s; requests/s\n")
    print("| measure | requests/s | against | requests/s | ratio | target |")
    print("|---|---|---|---|---|---|")
    print(
        f"| GET /devices behind BearerMiddleware | {protected:.0f} | unprotected | {plain:.0f} | {protected / plain:.0%} | >= 90% |"
    )
    print(
        f"| POST /oauth/token (warm secret cache) | {issued:.0f} | GET /devices, same server | {beside:.0f} | {issued / beside:.0%} | >= 50% |"
    )


if __name__ == "__main__":
    main()
