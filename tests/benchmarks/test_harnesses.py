"""The benchmark harnesses still run and print their tables (figures come from real runs, not here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_verify_prints_every_algorithm() -> None:
    table = run("benchmarks.verify", "--quick")
    for alg in ("RS256", "ES256", "EdDSA"):
        assert re.search(rf"^\| {alg} \|( [\d.]+x? \|){{7}}$", table, re.MULTILINE), table


def test_client_auth_prints_both_failures_and_their_ratio() -> None:
    table = run("benchmarks.client_auth", "--rounds", "3")
    assert "| unknown client ID |" in table and "| wrong secret (2 stored) |" in table, table
    assert re.search(r"wrong secret / unknown client: [\d.]+x", table), table
