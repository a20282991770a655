"""Token verification and issuing cost: ``embedauth bench`` as a harness of ``make bench``.

The measurement is :mod:`embedauth.benchmark` (shipped in the package, so ``embedauth bench``
works from an installed wheel); this module only gives it the harness arguments every module of
``benchmarks/`` takes.

Run: ``python -m benchmarks.verify`` (``--quick`` for a few seconds' run, ``--rounds N``,
``--algorithms RS256,ES256``, ``--json PATH`` to write the JSON document beside the Markdown
printed on stdout). A progress bar goes to stderr when it is a terminal (``--progress`` shows it
anyway, as ``python -m benchmarks`` asks when its own stderr is one).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from embedauth import benchmark
from embedauth.errors import EmbedAuthError

SKIP = 77  # what python -m benchmarks reads as "cannot run here", the reason on stderr


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens per round: a few seconds")
    parser.add_argument("--rounds", type=int, metavar="N", help="interleaved rounds (default: the preset's)")
    parser.add_argument("--algorithms", default=",".join(benchmark.ALGORITHMS), help="comma-separated")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the JSON document there")
    parser.add_argument("--progress", action="store_true", default=None, help="a progress bar on stderr")
    args = parser.parse_args(argv)
    missing = benchmark.missing_extra()
    if missing is not None:  # a prerequisite, not a failure: python -m benchmarks skips it, saying why
        print(f"benchmarks.verify needs {missing}: pip install 'embedauth[bench]'", file=sys.stderr)
        sys.exit(SKIP)
    preset = benchmark.QUICK if args.quick else benchmark.DEFAULT
    if args.rounds is not None:
        preset = benchmark.Preset(args.rounds, preset.verify_batch, preset.issue_batch)
    try:
        with benchmark.progress_bar(args.progress) as progress:
            result = benchmark.run(preset, algorithms=args.algorithms.split(","), progress=progress)
    except EmbedAuthError as exc:
        sys.exit(f"benchmarks.verify: {exc}")
    print(result.markdown())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")


if __name__ == "__main__":
    main()
