"""The benchmark harnesses still run and print their tables (figures come from real runs, not here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_verify_prints_every_algorithm(tmp_path: Path) -> None:
    document = tmp_path / "verify.json"
    table = run("benchmarks.verify", "--quick", "--rounds", "2", "--json", str(document))
    verification, issuing = table.split("Verification, microseconds per token:")[1].split("Issuing")
    for alg in ("RS256", "ES256", "EdDSA"):
        # six contenders, five ratios against their targets, and whether every target is met
        assert re.search(rf"^\| {alg} \|( [\d.]+x? \|){{11}} (yes|no: [^|]+) \|$", verification, re.M), table
        assert re.search(rf"^\| {alg} \|( [\d.]+x? \|){{7}}$", issuing, re.MULTILINE), table
    figures = json.loads(document.read_text())
    assert list(figures["verify"]) == list(figures["issue"]) == ["RS256", "ES256", "EdDSA"]
    assert figures["rounds"] == 2


def test_plot_draws_the_verify_figures(tmp_path: Path) -> None:
    document, picture = tmp_path / "verify.json", tmp_path / "verify.png"
    run("benchmarks.verify", "--quick", "--rounds", "1", "--algorithms", "ES256", "--json", str(document))
    run("benchmarks.plot", str(document), "--out", str(picture))
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_the_driver_runs_the_harnesses_and_says_why_one_is_skipped(tmp_path: Path) -> None:
    combined = tmp_path / "latest.json"
    out = run("benchmarks", "--only", "verify", "--quick", "--out", str(combined), "--no-plot")
    assert "## benchmarks.verify" in out and "| verify | ran |" in out and "Total: " in out, out
    harnesses = json.loads(combined.read_text())["harnesses"]
    assert harnesses["verify"]["status"] == "ran" and "RS256" in harnesses["verify"]["result"]["verify"]
    assert "| RS256 |" in harnesses["verify"]["markdown"]


def test_a_harness_not_there_or_without_its_program_is_skipped_with_the_reason() -> None:
    from benchmarks.__main__ import Harness, run_harness

    absent = run_harness(Harness("no_such_harness", "absent"), quick=True)
    assert (absent.status, absent.reason) == ("skipped", "benchmarks/no_such_harness.py is not there yet")
    unequipped = run_harness(Harness("verify", "v", programs=("no-such-program-here",)), quick=True)
    assert unequipped.status == "skipped" and "no-such-program-here" in unequipped.reason


def test_client_auth_prints_both_failures_and_their_ratio() -> None:
    table = run("benchmarks.client_auth", "--rounds", "3")
    assert "| unknown client ID |" in table and "| wrong secret (2 stored) |" in table, table
    assert re.search(r"wrong secret / unknown client: [\d.]+x", table), table


def test_verify_without_the_bench_extra_exits_77_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import verify

    monkeypatch.setitem(sys.modules, "authlib.jose", None)  # as if Authlib were not installed
    with pytest.raises(SystemExit) as exited:
        verify.main(["--quick"])
    assert exited.value.code == 77  # python -m benchmarks reports it as skipped, with this reason
    assert "pip install 'embedauth[bench]'" in capsys.readouterr().err
