"""What the ``embedauth`` command's tests share: ``main()`` run in-process on a frozen real-time clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from embedauth.cli import main
from embedauth.clock import FrozenClock
from tests.conftest import TEST_SETTINGS
from tests.services import BACKENDS, storage_url


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


class Cli:
    """``main()`` in-process on an injected clock, with what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], clock: FrozenClock) -> None:
        self.capsys = capsys
        self.clock = clock

    def __call__(self, *argv: str) -> Run:
        code = main(list(argv), clock=self.clock)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return Run(code, out, err)

    def ok(self, *argv: str) -> Any:
        """Run with ``--json``; it must succeed, print nothing on stderr and one JSON document."""
        run = self(*argv, "--json")
        assert (run.code, run.err) == (0, "")
        return json.loads(run.out)


@pytest.fixture
def now_clock() -> FrozenClock:
    """The real time, to the second, standing still (servers that expire keys see a real instant)."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], now_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Cli:
    # The command reads its settings from the environment; network stores need a key-encryption key.
    monkeypatch.setenv("EMBEDAUTH_KEY_ENCRYPTION_KEY", TEST_SETTINGS["key_encryption_key"])
    return Cli(capsys, now_clock)


def at(clock: FrozenClock, days: float = 0) -> datetime:
    return datetime.fromtimestamp(clock(), UTC) + timedelta(days=days)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS if b != "memory"])
def stored_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty storage URL of each backend that outlives one command (memory:// does not)."""
    with storage_url(str(request.param), tmp_path) as url:
        yield url
