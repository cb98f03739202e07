"""The scaling plot for BENCHMARKS.md: messages/s and peak RSS per sending process against the list size.

    python bench/plot.py [bench/results/send.jsonl] [--out bench/results/scaling.png]

Reads the JSON lines `bench/send.py --json FILE` appends (one object per run) and draws, for each kind of run
(floor, celery, embedded), the rate and the peak RSS of its largest sending process at each list size. When a size
was measured more than once, the median is drawn.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def label(run: dict) -> str:
    if run["kind"] == "floor":
        return f"floor, {run['processes']} process{'es' if run['processes'] > 1 else ''}"
    db = {"postgres": "PostgreSQL", "sqlite": "SQLite"}.get(run.get("db") or "", "")
    if run["kind"].startswith("celery"):
        extra = run["kind"].removeprefix("celery")
        return f"Celery, {run['processes']} workers, {db}" + (f" ({extra.strip('+')})" if extra else "")
    return f"embedded, 1 process, {db}"


def series(runs: list[dict]) -> dict[str, list[tuple[int, float, float | None]]]:
    """Per label: (N, median msg/s, median peak RSS MB of the largest process or None), by N."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[label(run)][run["n"]].append(run)
    out = {}
    for name, by_n in grouped.items():
        points = []
        for n, same in sorted(by_n.items()):
            rate = statistics.median(r["n"] / r["wall"] for r in same)
            rss = [max(r["rss_mb"]) for r in same if r["rss_mb"]]
            points.append((n, rate, statistics.median(rss) if rss else None))
        out[name] = points
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=HERE / "results" / "send.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scaling.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    if not runs:
        raise SystemExit(f"no runs in {args.results}")
    machine = runs[-1].get("machine", {})
    fig, (rate_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, points in sorted(series(runs).items()):
        ns = [p[0] for p in points]
        style = "--" if name.startswith("floor") else "-"
        rate_ax.plot(ns, [p[1] for p in points], style, marker="o", label=name)
        if any(p[2] is not None for p in points):
            rss_ax.plot([p[0] for p in points if p[2] is not None], [p[2] for p in points if p[2] is not None],
                        marker="o", label=name)
    for ax in (rate_ax, rss_ax):
        ax.set_xscale("log")
        ax.set_xlabel("subscribers")
        ax.grid(True, which="both", alpha=0.3)
    rate_ax.set_ylabel("messages per second")
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_title("send rate")
    rss_ax.set_ylabel("peak RSS of a sending process (MB)")
    rss_ax.set_ylim(bottom=0)
    rss_ax.set_title("memory")
    rate_ax.legend(fontsize=8)
    rss_ax.legend(fontsize=8)
    fig.suptitle(f"papermail send, 54.6 kB digest; {machine.get('cores', '?')} cores, {machine.get('cpu', '?')}",
                 fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
