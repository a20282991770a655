"""``python -m benchmarks.http --quick`` runs every comparison and prints its table (no timing is asserted:
the figures come from real runs, not from here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| (?P<measure>[^|]+) \| (\d+) \| [^|]+ \| (\d+) \| (\d+)% \| (?P<target>≥ \d+%|–) \| (?P<met>yes|no|–) \|$",
    re.MULTILINE,
)


def test_quick_run_prints_every_row_with_figures(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("EMBEDAUTH_REQUIRE_SERVICES") == "1":
            pytest.fail("wrk is not installed (apt-get install wrk), and EMBEDAUTH_REQUIRE_SERVICES=1")
        pytest.skip("wrk is not installed: apt-get install wrk")
    figures = tmp_path / "http.json"
    done = subprocess.run(
        # --quick, with 1 s per measurement instead of 2: seven comparisons within about a minute.
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "benchmarks.http",
            "--quick",
            "--seconds",
            "1",
            "--json",
            str(figures),
        ],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    assert table.startswith("### HTTP\n"), table
    assert "| measure | req/s | baseline | baseline req/s | ratio | target | met |" in table, table
    assert "wrk " in table and "1 thread, 16 connections" in table and "interleaved rounds" in table, table
    rows = list(ROW.finditer(table))
    measured = {match["measure"] for match in rows}
    # The rows that take the Starlette middleware apart have no target of their own; the rest have one.
    explaining = {match["measure"] for match in rows if match["target"] == "–"}
    assert explaining == {
        "a middleware leaving a fixed caller in the scope, Starlette",
        "the same + `requires_scopes`, Starlette",
    }, table
    assert all((match["target"] == "–") == (match["met"] == "–") for match in rows), table
    skipped = re.findall(r"^- (\w+): skipped: (.+)$", table, re.MULTILINE)
    if os.environ.get("EMBEDAUTH_REQUIRE_SERVICES") == "1":
        assert not skipped, table
    expected = {
        "sqlite": "SQLite",
        "postgresql": "PostgreSQL",
        "redis": "Redis",
        "starlette": "Starlette",
        "flask": "Flask",
    }
    skipped_keys = {key for key, _ in skipped}
    for key, name in expected.items():
        if key not in skipped_keys:
            assert any(name in measure for measure in measured), (name, table)
    assert {"sqlite", "starlette", "flask"}.isdisjoint(skipped_keys), table  # no server needed for these
    document = json.loads(figures.read_text())
    assert document["wrk"] == {"threads": 1, "connections": 16, "version": document["wrk"]["version"]}
    for result in document["results"]:
        if result["skipped"] is None:
            assert result["rps"] > 0 and result["baseline_rps"] > 0 and result["ratio"] > 0, result
            assert len(result["rounds"]) == document["options"]["rounds"] == 2, result
            assert isinstance(result["met"], bool) or (result["met"] is None and result["target"] is None), (
                result
            )
