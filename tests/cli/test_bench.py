"""``embedauth bench``: its JSON shape and its table (never its timings: they are the machine's)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from embedauth import benchmark
from tests.cli.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
VERIFIERS = ["floor", "embedauth_first_seen", "embedauth_cached", "pyjwt", "joserfc", "authlib"]
ISSUERS = ["floor", "pyjwt", "embedauth_client_credentials", "embedauth_endpoint"]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In an empty directory, with a storage configured that bench must not open."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDAUTH_STORAGE", f"sqlite:///{tmp_path / 'configured.db'}")
    return tmp_path


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_json_has_every_figure_of_every_algorithm_and_contender(cli: Cli, elsewhere: Path) -> None:
    doc = cli.ok("bench", "--quick")
    assert doc["benchmark"] == "embedauth bench"
    assert (doc["rounds"], doc["verify_batch"], doc["issue_batch"]) == (
        benchmark.QUICK.rounds,
        benchmark.QUICK.verify_batch,
        benchmark.QUICK.issue_batch,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["date"]) and positive(doc["seconds"])
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["python"].split()[-1] in sys.version
    assert {"cryptography", "openssl", "embedauth"} <= set(machine)
    assert set(machine["peers"]) == {"PyJWT", "joserfc", "Authlib"}
    assert list(doc["contenders"]["verify"]) == VERIFIERS and list(doc["contenders"]["issue"]) == ISSUERS
    assert list(doc["verify"]) == list(doc["issue"]) == ALGORITHMS
    for alg in ALGORITHMS:
        verify, issue = doc["verify"][alg], doc["issue"][alg]
        assert list(verify["us_per_op"]) == VERIFIERS and all(map(positive, verify["us_per_op"].values()))
        assert list(issue["us_per_op"]) == ISSUERS and all(map(positive, issue["us_per_op"].values()))
        for figures in (verify, issue):
            assert (
                list(figures["vs_floor"]) == list(figures["us_per_op"]) and figures["vs_floor"]["floor"] == 1
            )
            for key, (q1, q3) in figures["quartiles_us"].items():
                assert 0 < q1 <= figures["us_per_op"][key] <= q3
        assert list(verify["ratios"]) == [
            "embedauth_first_seen/floor",
            "pyjwt/embedauth_first_seen",
            "joserfc/embedauth_first_seen",
            "authlib/embedauth_first_seen",
            "pyjwt/embedauth_cached",
        ]
        assert all(map(positive, verify["ratios"].values())) and all(map(positive, issue["ratios"].values()))
        targets = {t["ratio"]: t for t in verify["targets"]}
        assert set(targets) == set(verify["ratios"])
        assert targets["embedauth_first_seen/floor"]["target"] == "<= 1.15x"
        assert targets["pyjwt/embedauth_cached"]["target"] == ">= 20x"
        assert verify["met"] == all(t["met"] for t in verify["targets"])
    assert list(elsewhere.iterdir()) == []  # the configured storage was never opened


def test_text_is_the_header_and_both_tables(cli: Cli) -> None:
    run = cli("bench", "--quick", "--rounds", "1")
    assert (run.code, run.err) == (0, "")  # stderr is not a terminal here: no progress bar
    lines = run.out.splitlines()
    assert lines[0].startswith("embedauth bench: ") and "cores" in lines[0] and "cryptography" in lines[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: 1 interleaved round ", lines[1])
    for alg in ALGORITHMS:
        assert re.search(rf"^\| {alg} \|( [\d.]+x? \|){{11}} (yes|no: [^|]+) \|$", run.out, re.M)
        assert re.search(rf"^\| {alg} \|( [\d.]+x? \|){{7}}$", run.out, re.M)


def test_the_documented_sample_has_the_tables_the_command_prints(cli: Cli) -> None:
    """docs/command.md shows a real run: the same header lines and columns as the command's now."""
    page = (ROOT / "docs" / "command.md").read_text()
    sample = page.split("<!-- bench sample -->")[1].split("```")[1]
    printed = cli("bench", "--quick", "--rounds", "1").out

    def shape(text: str) -> list[str]:
        header = [line for line in text.splitlines() if line.startswith("| alg |")]
        rows = [line.split(" |")[0] for line in text.splitlines() if re.match(r"\| (RS|ES|Ed)", line)]
        intro = [line.split(":")[0] for line in text.splitlines() if line.endswith("per token:")]
        return [*header, *rows, *intro]

    assert shape(sample) == shape(printed)
    assert sample.strip().splitlines()[0].startswith("embedauth bench: ")


def test_without_the_bench_extra_it_says_what_to_install(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "authlib.jose", None)  # as if Authlib were not installed
    run = cli("bench", "--quick")
    assert run.code == 1 and run.out == ""
    assert run.err.startswith("embedauth: error: ") and "pip install 'embedauth[bench]'" in run.err


def test_rounds_must_be_a_positive_number(cli: Cli) -> None:
    run = cli("bench", "--rounds", "0")
    assert run.code == 2 and "--rounds" in run.err and "1 or more" in run.err
