"""The verification figures as a bar chart: ``docs/img/benchmarks/verify.png``.

For each algorithm, one bar per contender (microseconds per verification, the median over rounds,
a whisker over the middle half of the rounds), the floor hatched and carried across its group as
a dashed line, so that how far each bar stands above it reads at a glance.

Run: ``python -m benchmarks.plot [PATH] [--out PNG]``, PATH being ``embedauth bench --json``'s
document or ``benchmarks/results/latest.json`` (the default); ``python -m benchmarks`` calls it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IN = ROOT / "benchmarks" / "results" / "latest.json"
DEFAULT_OUT = ROOT / "docs" / "img" / "benchmarks" / "verify.png"

COLORS = {
    "floor": "#bdbdbd",
    "embedauth_first_seen": "#1f6fb4",
    "embedauth_cached": "#66a9e0",
    "pyjwt": "#e07b39",
    "joserfc": "#8e6bbf",
    "authlib": "#4f9d69",
}


def verify_document(document: dict[str, Any]) -> dict[str, Any]:
    """The verify harness's document, from itself or from the combined JSON of ``make bench``."""
    if "harnesses" in document:
        result = document["harnesses"].get("verify", {}).get("result")
        if result is None:
            raise SystemExit("the combined JSON has no verify result (did benchmarks.verify run?)")
        return dict(result)
    return document


def draw(document: dict[str, Any], out: Path = DEFAULT_OUT) -> Path:
    """Draw the chart of ``document`` (see :func:`verify_document`) to ``out``; return ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = verify_document(document)
    labels: dict[str, str] = doc["contenders"]["verify"]
    keys = list(labels)
    algorithms = list(doc["verify"])
    width = 0.8 / len(keys)
    figure, axes = plt.subplots(figsize=(10, 5.2), dpi=120)
    for index, key in enumerate(keys):
        xs = [a + (index - (len(keys) - 1) / 2) * width for a in range(len(algorithms))]
        values = [doc["verify"][alg]["us_per_op"][key] for alg in algorithms]
        ranges = [doc["verify"][alg]["quartiles_us"][key] for alg in algorithms]
        whiskers = [
            [v - lo for v, (lo, _) in zip(values, ranges, strict=True)],
            [hi - v for v, (_, hi) in zip(values, ranges, strict=True)],
        ]
        bars = axes.bar(
            xs,
            values,
            width * 0.92,
            label=labels[key],
            color=COLORS.get(key, "#999999"),
            edgecolor="#555555" if key == "floor" else "none",
            hatch="//" if key == "floor" else None,
            yerr=whiskers,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#444444"},
        )
        for bar, value, (_, q3) in zip(bars, values, ranges, strict=True):
            text = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
            axes.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, max(value, q3)),  # above the whisker
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
            )
    for position, alg in enumerate(algorithms):
        floor = doc["verify"][alg]["us_per_op"]["floor"]
        axes.hlines(
            floor, position - 0.42, position + 0.42, colors="#333333", linestyles="dashed", linewidth=1
        )
        ratio = doc["verify"][alg]["ratios"].get("embedauth_first_seen/floor")
        if ratio is not None:
            axes.annotate(
                f"first-seen {ratio:.2f}x floor",
                (position, 0),
                xytext=(0, -30),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="#1f6fb4",
            )
    axes.set_xticks(range(len(algorithms)), algorithms)
    axes.set_ylabel("µs per verification (median over rounds; lower is better)")
    machine = doc["machine"]
    axes.set_title(
        f"Token verification, same tokens for all: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['python']}\n{doc['rounds']} interleaved rounds of {doc['verify_batch']} tokens, "
        f"{doc['date']}; dashed: the floor (hand-written on cryptography)",
        fontsize=9.5,
    )
    axes.legend(fontsize=8, ncols=3, loc="upper left", frameon=False)
    axes.set_ylim(
        0, max(max(q[1] for q in doc["verify"][a]["quartiles_us"].values()) for a in algorithms) * 1.25
    )
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_IN, help="the JSON to draw from")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PNG to write")
    args = parser.parse_args(argv)
    print(draw(json.loads(args.path.read_text()), args.out))


if __name__ == "__main__":
    main()
