"""The growth, memory and reach harnesses run (``--quick``) and print their tables.

The three quick runs start together, as subprocesses, once per test run (they share no
namespace: each makes its own schema, database or key prefix and removes it). The tests check the
tables' shape and that every figure is a number, never whether a target was met: timings on a
shared machine are noisy, and the harness output says met or not. Rows that need PostgreSQL,
MariaDB or Redis skip when the server is unreachable (fail under ``EMBEDAUTH_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import require

ROOT = Path(__file__).resolve().parents[2]
HARNESSES = ("growth", "memory", "reach")
NUMBER = r"[+-]?[\d,]+(?:\.\d+)?"


@dataclass(frozen=True)
class Run:
    stdout: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class Runs:
    by_name: dict[str, Run]
    seconds: float


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    workdir = tmp_path_factory.mktemp("harnesses")
    started = time.monotonic()
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-W",
                "ignore",
                "-m",
                f"benchmarks.{name}",
                "--quick",
                "--json",
                str(workdir / name),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in HARNESSES
    }
    results: dict[str, Run] = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=180)
            assert proc.returncode == 0, f"benchmarks.{name}: {stderr}"
            figures = json.loads((workdir / name).read_text(encoding="utf-8"))
            results[name] = Run(stdout, figures)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Runs(results, time.monotonic() - started)


def table_rows(stdout: str, first: str) -> list[list[str]]:
    """The cells of every table row whose first cell starts with ``first``."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith(f"| {first}"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def check_section(stdout: str, headers: list[str]) -> None:
    assert re.search(r"^### \S", stdout, re.MULTILINE), stdout
    assert "Machine-independent parameters:" in stdout, stdout
    assert "| " + " | ".join(headers) + " |" in stdout, stdout


def test_quick_runs_take_under_a_minute(runs: Runs) -> None:
    assert runs.seconds < 60, f"the three quick runs took {runs.seconds:.0f} s"


# ---------------------------------------------------------------------------- growth

GROWTH_HEADERS = ["measure", "backend", "configuration", "µs per call (median)", "ratio", "target", "met"]


def _growth_row(row: list[str]) -> None:
    assert len(row) == len(GROWTH_HEADERS), row
    assert re.fullmatch(NUMBER, row[3]) and re.fullmatch(NUMBER, row[4]), row
    assert row[6] in ("yes", "no"), row


def test_growth_verify_rows(runs: Runs) -> None:
    run = runs.by_name["growth"]
    check_section(run.stdout, GROWTH_HEADERS)
    rows = table_rows(run.stdout, "verify, first sight")
    configurations = [row[2] for row in rows]
    assert len(rows) == 5, run.stdout
    assert configurations[0] == "0 revocation entries, 0 registrations", configurations
    assert any(c.startswith("5,000 revocation entries") for c in configurations), configurations
    assert any(c.endswith(", 5,000 registrations") for c in configurations), configurations
    for row in rows:
        _growth_row(row)
        assert row[5] == "0.90-1.10", row
    assert float(rows[0][4]) == 1.0


@pytest.mark.parametrize("backend", ["postgres", "redis"])
def test_growth_token_endpoint_rows(runs: Runs, backend: str) -> None:
    require(backend)
    run = runs.by_name["growth"]
    rows = [row for row in table_rows(run.stdout, "token endpoint") if row[1] == backend]
    modes = sorted({row[0] for row in rows})
    assert modes == [
        "token endpoint, steady (view + secret cache)",
        "token endpoint, view off (storage read each)",
    ], run.stdout
    assert sorted(row[2] for row in rows) == sorted(["200 registrations", "5,000 registrations"] * 2), rows
    for row in rows:
        _growth_row(row)
        assert row[5] == "0.80-1.20", row
    assert str(200) in run.figures["seeding"][backend] and "5000" in run.figures["seeding"][backend]
    assert f"registrations into {backend} in" in run.stdout


# ---------------------------------------------------------------------------- memory


def test_memory_structures_and_growth(runs: Runs) -> None:
    run = runs.by_name["memory"]
    check_section(run.stdout, ["check", "figure", "bound / target", "met"])
    for name in (
        "token cache",
        "verified-secret cache",
        "header cache (jws._HEADERS)",
        "throttle, per client ID",
        "throttle, per address",
        "registration view",
    ):
        rows = table_rows(run.stdout, f"{name}: largest size seen")
        assert len(rows) == 1, run.stdout
        figure, bound, met = rows[0][1:]
        assert re.fullmatch(NUMBER, figure) and re.fullmatch(rf"≤ {NUMBER}", bound), rows
        assert met in ("yes", "no"), rows
    for label in ("RSS", "tracemalloc"):
        rows = table_rows(run.stdout, f"{label} growth, 2,000 → 20,000 tokens")
        assert len(rows) == 1, run.stdout
        assert re.fullmatch(rf"{NUMBER} MiB", rows[0][1]) and rows[0][3] in ("yes", "no"), rows
    checkpoints = [row[0] for row in table_rows(run.stdout, "") if re.fullmatch(r"[\d,]+ \+ [\d,]+", row[0])]
    assert checkpoints == ["0 + 0", "2,000 + 2,000", "10,000 + 10,000", "20,000 + 20,000"], run.stdout
    assert run.figures["accepted"] == run.figures["refused"] == 20_000


# ---------------------------------------------------------------------------- reach

REACH_HEADERS = [
    "backend",
    "feed",
    "trials",
    "p50 ms",
    "p99 ms",
    "max ms",
    "disable() ms (median)",
    "target",
    "met",
]


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres", "mysql"])
def test_reach_rows(runs: Runs, backend: str) -> None:
    if backend != "sqlite":
        require(backend)
    run = runs.by_name["reach"]
    check_section(run.stdout, REACH_HEADERS)
    rows = table_rows(run.stdout, f"{backend} |")
    assert len(rows) == 1, run.stdout
    row = rows[0]
    assert len(row) == len(REACH_HEADERS), row
    assert row[2] == "5", row
    for cell in row[3:7]:
        assert re.fullmatch(NUMBER, cell), row
    pushed = backend in ("redis", "postgres")
    assert row[1] == ("push" if pushed else "polled every 0.5 s"), row
    assert row[7] == ("p99 ≤ 1000 ms" if pushed else "p99 ≤ 700 ms"), row
    assert row[8] in ("yes", "no"), row
    assert len(run.figures["backends"][backend]["reach_s"]) == 5
