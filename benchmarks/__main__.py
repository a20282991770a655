"""``make bench``: every harness of ``benchmarks/`` in sequence, one combined JSON, the plot.

Each harness runs as its own process, ``python -m benchmarks.NAME [--quick] [--json PATH]`` (the
options it declares in its ``--help``), so that one's threads, caches and servers never weigh on the
next. Its Markdown (stdout) is printed as it finishes; its stderr passes through as it comes (the
progress bars, a server's complaints). A harness is **skipped**, with the reason printed, when its
module is not there yet, when a program it needs (``wrk``) is not on the PATH, or when it exits with
status 77 (the reason on its stderr: a server it needs is unreachable, say); any other non-zero exit
is a **failure**, printed with the end of its stderr, and makes this command exit 1.

The combined JSON goes to ``benchmarks/results/latest.json`` (``--out``): every harness's status,
seconds, Markdown and, when it writes one, its JSON document. It is meant to be committed: the
documentation cites it, and a diff of it shows what a change did to the figures. Then
:mod:`benchmarks.plot` draws ``docs/img/benchmarks/verify.png`` from the verification figures.

Run: ``python -m benchmarks`` (``--quick``: each harness's short run; ``--only verify,http``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from embedauth.benchmark import Machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
SKIP = 77  # a harness that cannot run here exits with this, the reason on its stderr


@dataclass(frozen=True, slots=True)
class Harness:
    name: str
    what: str
    programs: tuple[str, ...] = ()
    """Programs it runs, which must be on the PATH."""


HARNESSES: tuple[Harness, ...] = (
    Harness("verify", "token verification and issuing against a floor, PyJWT, joserfc and Authlib"),
    Harness("client_auth", "what a failed client authentication costs (unknown client, wrong secret)"),
    Harness("http", "HTTP throughput: bearer middleware and token endpoint", programs=("wrk",)),
    Harness("growth", "verify and token endpoint cost as revocations and registrations grow"),
    Harness("memory", "memory bounds: caches and in-memory state under a million tokens"),
    Harness("reach", "how soon a revocation reaches every process"),
)


@dataclass
class Outcome:
    status: str  # "ran", "skipped" or "failed"
    seconds: float = 0.0
    reason: str = ""
    markdown: str = ""
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "seconds": round(self.seconds, 1)}
        if self.reason:
            body["reason"] = self.reason
        if self.status == "ran":
            body["markdown"] = self.markdown
            body["result"] = self.result
        return body


def _tee(source: IO[bytes], kept: bytearray) -> None:
    """Copy a child's stderr to ours as it arrives, keeping its last 4 KiB for the report."""
    read = getattr(source, "read1", source.read)
    while chunk := read(4096):
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        kept.extend(chunk)
        del kept[:-4096]


def _options(module: str) -> str:
    """The harness's ``--help``, to see which of our options it takes."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def run_harness(harness: Harness, *, quick: bool) -> Outcome:
    module = f"benchmarks.{harness.name}"
    if importlib.util.find_spec(module) is None:
        return Outcome("skipped", reason=f"benchmarks/{harness.name}.py is not there yet")
    missing = [program for program in harness.programs if shutil.which(program) is None]
    if missing:
        return Outcome("skipped", reason=f"needs {', '.join(missing)}, not on the PATH")
    declared = _options(module)
    with tempfile.TemporaryDirectory() as scratch:
        json_path = Path(scratch) / f"{harness.name}.json"
        command = [sys.executable, "-m", module]
        if "--json" in declared:
            command += ["--json", str(json_path)]
        if quick and "--quick" in declared:
            command.append("--quick")
        if "--progress" in declared and sys.stderr.isatty():
            command.append("--progress")  # its stderr is our pipe, and ours a terminal
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None and child.stderr is not None
        kept = bytearray()
        copier = threading.Thread(target=_tee, args=(child.stderr, kept), daemon=True)
        copier.start()
        markdown = child.stdout.read().decode()
        code = child.wait()
        copier.join()
        seconds = time.perf_counter() - started
        errors = kept.decode(errors="replace")
        if code == SKIP:
            return Outcome("skipped", seconds, reason=_last_line(errors))
        if code != 0:
            return Outcome("failed", seconds, reason=f"exit {code}: {_last_line(errors)}", markdown=markdown)
        result = json.loads(json_path.read_text()) if json_path.exists() else None
        note = "" if result is not None else "no --json: its figures are in its Markdown only"
        return Outcome("ran", seconds, reason=note, markdown=markdown.strip(), result=result)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each harness's short run, where it has one")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated harnesses (default: every one)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the combined JSON (default {RESULTS})")
    parser.add_argument("--no-plot", action="store_true", help="do not draw docs/img/benchmarks/verify.png")
    args = parser.parse_args(argv)
    chosen = HARNESSES
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {h.name for h in HARNESSES})
        if unknown:
            parser.error(f"no harness {', '.join(unknown)}; there are {', '.join(h.name for h in HARNESSES)}")
        chosen = tuple(h for h in HARNESSES if h.name in names)
    started = time.perf_counter()
    date = datetime.now(UTC)
    outcomes: dict[str, Outcome] = {}
    for harness in chosen:
        print(f"## benchmarks.{harness.name}: {harness.what}\n", flush=True)
        outcome = outcomes[harness.name] = run_harness(harness, quick=args.quick)
        if outcome.markdown:
            print(outcome.markdown.strip() + "\n")
        label = {"ran": "took", "skipped": "skipped", "failed": "FAILED"}[outcome.status]
        detail = f"{outcome.seconds:.0f} s" if outcome.status == "ran" else outcome.reason
        if outcome.status == "ran" and outcome.reason:
            detail += f"; {outcome.reason}"
        print(f"({label}: {detail})\n", flush=True)
    total = time.perf_counter() - started
    print("| harness | status | seconds | note |\n|---|---|---|---|")
    for name, outcome in outcomes.items():
        print(f"| {name} | {outcome.status} | {outcome.seconds:.0f} | {outcome.reason} |")
    print(f"\nTotal: {total:.0f} s")
    combined = {
        "date": date.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "seconds": round(total, 1),
        "machine": Machine.current().to_json(),
        "harnesses": {name: outcome.to_json() for name, outcome in outcomes.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(combined, indent=2) + "\n")
    print(f"Wrote {args.out}")
    verify = outcomes.get("verify")
    if not args.no_plot and verify is not None and verify.result is not None:
        from benchmarks import plot

        print(f"Drew {plot.draw(verify.result)}")
    elif not args.no_plot:
        print("No plot: the verify harness did not run")
    return 1 if any(o.status == "failed" for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
