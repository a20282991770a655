"""Revocation reach: from a pause in one process to the first refusal in another.

For each backend, this process (the *admin*) starts a *verifier* subprocess
(``python -m benchmarks.reach --child``) on the same storage and runs trials. Each trial makes a
new registration, gets it a token and sends the token to the verifier over its stdin; the verifier
accepts it once (so it is in its token cache) and then verifies it in a tight loop, each call a
cache hit that re-checks revocation, until the first refusal, whose ``time.time()`` it writes back
over its stdout. The admin waits a random fraction of the poll interval (so that the pause falls
anywhere in the verifier's poll cycle), takes ``time.time()`` and calls
``auth.registrations.disable(client_id)`` (the pause: a new generation, the older ones revoked).
Reach = the verifier's refusal time minus the time just before ``disable`` was called (the write
itself included). Both clocks are this machine's.

Targets: p99 ≤ 1 s on Redis and PostgreSQL (push feeds: pub/sub, LISTEN/NOTIFY); p99 ≤
``revocation_poll_interval`` + 200 ms on SQLite and MariaDB (polled), run with the poll interval of
``--poll`` (0.5 s, the default setting) in both processes. p99 is by nearest rank (of 30 trials, the
largest). A backend whose server is unreachable is reported as skipped.

Run: ``python -m benchmarks.reach`` (``--quick``: 5 trials per backend, else ``--trials``, 30;
``--backends``, ``--poll`` override; ``--json PATH`` writes the figures). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from tests.services import unreachable

from benchmarks import _seed
from embedauth import EmbedAuth
from embedauth.errors import InvalidToken
from embedauth.tokens.keys import new_key_encryption_key

ISSUER = "https://api.example.com"
PUSHED = ("redis", "postgres")
BACKENDS = ("redis", "postgres", "sqlite", "mysql")
CHILD_TIMEOUT = 10.0  # seconds the verifier waits for a refusal before it reports a timeout


def _open(url: str, kek: str, poll: float) -> EmbedAuth:
    return EmbedAuth(
        url,
        issuer=ISSUER,
        key_encryption_key=kek,
        revocation_poll_interval=poll,
        failed_auth_limit_per_client=10**6,
        failed_auth_limit_per_address=10**6,
        **_seed.ARGON2,
    )


def child(url: str, kek: str, poll: float) -> int:
    """The verifier: one token per stdin line, answered with ``refused <time>`` or ``timeout``."""
    auth = _open(url, kek, poll)
    auth.prepare()
    print("ready", flush=True)
    for line in sys.stdin:
        token = line.strip()
        if token == "quit":
            break
        deadline = time.monotonic() + 5.0
        while True:  # the token was just signed: accept it once (a new key may need a reload)
            try:
                auth.verify(token)
                break
            except InvalidToken:
                if time.monotonic() > deadline:
                    print("never accepted", flush=True)
                    return 1
                time.sleep(0.01)
        print("accepted", flush=True)
        deadline = time.monotonic() + CHILD_TIMEOUT
        answer = "timeout"
        checks = 0
        while True:
            try:
                auth.verify(token)
            except InvalidToken:
                answer = f"refused {time.time():.6f}"
                break
            checks += 1
            if checks % 1000 == 0 and time.monotonic() > deadline:
                break
        print(answer, flush=True)
    auth.close()
    return 0


def _read(proc: subprocess.Popen[str], stderr: IO[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        stderr.seek(0)
        raise RuntimeError(f"the verifier exited: {stderr.read()[-2000:]}")
    return line.strip()


def trials(backend: str, count: int, poll: float, workdir: Path) -> dict[str, Any]:
    """``count`` trials on a fresh namespace of ``backend``: reach and disable times, seconds."""
    kek = new_key_encryption_key()
    rng = random.Random(11)
    reach: list[float] = []
    writes: list[float] = []
    timeouts = 0
    with (
        _seed.namespace(backend, workdir) as url,
        tempfile.TemporaryFile("w+") as stderr,
        contextlib.ExitStack() as stack,
    ):
        auth = _open(url, kek, poll)
        stack.callback(auth.close)
        auth.permissions.add(_seed.SCOPE)
        auth.jwks()  # the signing key exists before the verifier loads the ring
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.reach", "--child", url, f"--kek={kek}", "--poll", str(poll)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
        )
        assert proc.stdin is not None
        stdin = proc.stdin
        try:
            if _read(proc, stderr) != "ready":
                raise RuntimeError("the verifier did not start")
            for _ in range(count):
                created = auth.registrations.create(tenant=_seed.TENANT, name="reach", scopes=[_seed.SCOPE])
                token = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
                stdin.write(token + "\n")
                stdin.flush()
                if _read(proc, stderr) != "accepted":
                    raise RuntimeError("the verifier never accepted the token")
                time.sleep(rng.uniform(0.05, 0.05 + poll))  # anywhere in the verifier's poll cycle
                before = time.time()
                auth.registrations.disable(created.client_id)
                writes.append(time.time() - before)
                answer = _read(proc, stderr)
                if answer.startswith("refused "):
                    reach.append(float(answer.split()[1]) - before)
                else:
                    timeouts += 1
                    reach.append(CHILD_TIMEOUT)
            stdin.write("quit\n")
            stdin.flush()
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {"reach_s": reach, "disable_s": writes, "timeouts": timeouts}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 trials per backend")
    parser.add_argument("--trials", type=int, help="trials per backend (default 30)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--poll", type=float, default=0.5, help="revocation_poll_interval, both processes")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--kek", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.kek, args.poll)
    count = args.trials or (5 if args.quick else 30)
    started = time.monotonic()
    rows: list[list[object]] = []
    figures: dict[str, Any] = {"trials": count, "poll_interval_s": args.poll, "backends": {}}
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        for backend in (b for b in args.backends.split(",") if b):
            reason = unreachable(backend)
            if reason is not None:
                skipped.append(f"{backend}: {reason}")
                continue
            result = trials(backend, count, args.poll, Path(workdir))
            reach = result["reach_s"]
            limit = 1.0 if backend in PUSHED else args.poll + 0.2
            p50, p99 = _seed.percentile(reach, 0.50), _seed.percentile(reach, 0.99)
            met = p99 <= limit and not result["timeouts"]
            result.update(p50_s=p50, p99_s=p99, target_s=limit, met=met)
            figures["backends"][backend] = result
            rows.append(
                [
                    backend,
                    "push" if backend in PUSHED else f"polled every {args.poll:g} s",
                    len(reach),
                    f"{p50 * 1000:.0f}",
                    f"{p99 * 1000:.0f}",
                    f"{max(reach) * 1000:.0f}",
                    f"{_seed.median(result['disable_s']) * 1000:.1f}",
                    f"p99 ≤ {limit * 1000:.0f} ms",
                    _seed.yes(met),
                ]
            )
    duration = time.monotonic() - started
    figures["duration_s"] = duration
    figures["skipped"] = skipped
    print("### Revocation reach: a pause in one process, the first refusal in another")
    print()
    print(
        f"Machine-independent parameters: {count} trials per backend, each a new registration; the "
        f"verifier subprocess re-verifies one cached token in a tight loop; reach measured from just "
        f"before `auth.registrations.disable` to the verifier's first refusal; "
        f"revocation_poll_interval={args.poll:g} s in both processes; {_seed.ARGON2_TEXT}."
    )
    print()
    print(
        _seed.table(
            [
                "backend",
                "feed",
                "trials",
                "p50 ms",
                "p99 ms",
                "max ms",
                "disable() ms (median)",
                "target",
                "met",
            ],
            rows,
        )
    )
    for reason in skipped:
        print(f"\nSkipped {reason}")
    print(f"\nDuration: {duration:.0f} s.")
    _seed.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
