"""Revocation reaches another process within a second (DESIGN.md), also after its feed reconnects."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedauth import EmbedAuth
from tests.conftest import TEST_SETTINGS
from tests.services import POSTGRES_URL, REDIS_URL, storage_url

ISSUER = "https://api.example.com"
PUSH = ("redis", "postgres")


class Verifier:
    """The other process, and the lines it prints."""

    def __init__(self, url: str, poll_interval: float, tokens: list[str]) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-m",
                "tests.tokens.verifier_process",
                url,
                ISSUER,
                str(poll_interval),
                *tokens,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        self.lines: list[str] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.arrived:
                self.lines.append(line.strip())
                self.arrived.notify_all()

    def expect(self, prefix: str, nth: int = 1, timeout: float = 15.0) -> str:
        """The ``nth`` line starting with ``prefix``, waiting for it if need be."""

        def found() -> list[str]:
            return [line for line in self.lines if line.startswith(prefix)]

        with self.arrived:
            if self.arrived.wait_for(lambda: len(found()) >= nth, timeout=timeout):
                return found()[nth - 1]
        self.process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = self.process.communicate()
        raise AssertionError(
            f"the verifier process did not print {prefix!r} within {timeout} s; it printed {self.lines}:\n{err}"
        )

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def kill_feed(backend: str, name: str) -> None:
    """Cut the feed's connection from the server side, as a failover or a proxy restart would."""
    if backend == "redis":
        import redis

        admin = redis.Redis.from_url(REDIS_URL)
        ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
        assert ids, f"no Redis client named {name}"
        for client_id in ids:
            admin.client_kill_filter(_id=client_id)
        admin.close()
    else:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            killed = conn.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                ),
                {"n": name},
            ).all()
        engine.dispose()
        assert killed, f"no PostgreSQL connection named {name}"


@pytest.fixture(
    params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("redis", "postgres", "sqlite", "mysql")]
)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with storage_url(request.param, tmp_path) as url:
        yield request.param, url


def test_disable_reaches_another_process_within_a_second(shared_url: tuple[str, str]) -> None:
    backend, url = shared_url
    push = backend in PUSH
    with EmbedAuth(url, issuer=ISSUER, **TEST_SETTINGS) as auth:
        made = [auth.registrations.create(tenant="site-1", name=f"Job {i}") for i in range(2)]
        tokens = [auth.tokens.client_credentials(m.client_id, m.client_secret).access_token for m in made]
        # With a push feed, poll only every 3 s: only the feed can make it in a second.
        verifier = Verifier(url, poll_interval=3.0 if push else 0.5, tokens=tokens)
        try:
            feed = verifier.expect("feed").split(" ", 1)[1] if push else None
            verifier.expect("ready")
            started = time.monotonic()
            auth.registrations.disable(made[0].client_id)
            refused_at = float(verifier.expect("refused 0").split()[2])
            assert refused_at - started < 1.0
            if feed is None:
                return
            kill_feed(backend, feed)
            verifier.expect("feed", nth=2)  # reconnected (after one poll interval)
            started = time.monotonic()
            auth.registrations.disable(made[1].client_id)
            refused_at = float(verifier.expect("refused 1").split()[2])
            assert refused_at - started < 1.0
        finally:
            verifier.stop()
