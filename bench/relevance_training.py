"""How long one reader's relevance model takes to train, by how many votes they have. Prints figures, asserts nothing.

    python bench/relevance_training.py [--readers 15] [--seed 1]

The papers are the stored sample day (45 real items), made ready as an issue is (``Candidates``: TF-IDF over
their titles, summaries and keywords). Each reader votes "more" or "less" at random on 5, 20 or 100 papers, and
their examples are built as ``bench/personal_quality.py`` builds them (``relevance.examples``). The day has
fewer than 100 papers, so above 45 votes the papers come round again under new ids: neither way of training
merges repeated vectors, so the time depends only on how many examples there are and how long they are.

Each reader's model is trained twice, the two interleaved: by ``relevance.train`` (new), and by the descent
on every word's weight that it replaced (old, below as it was). The figures are medians over the readers,
their ratio, what 100,000 readers of that size would take one after another (new), and the largest relative
difference between the two models' weights.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.digest.personal import Candidates  # noqa: E402
from pipeline.digest.relevance import Example, Model, Vector, examples, train  # noqa: E402
from pipeline.ingest import hf  # noqa: E402
from tests.support.relevance_reference import primal_train  # noqa: E402

SAMPLE = ROOT / "pipeline" / "ingest" / "data" / "hf_daily_papers_2025-03-21_1800Z.json"
SIZES = (5, 20, 100)
READERS_AT_SCALE = 100_000


def sample_day() -> Candidates:
    """The sample day's papers as frozen items, made ready for readers."""
    found = hf.parse_day(SAMPLE.read_bytes(), day=dt.date(2025, 3, 21)).papers
    return Candidates([{"arxiv_id": p.arxiv_id, "title": p.title, "summary": p.summary or p.abstract,
                        "abstract": p.abstract, "keywords": list(p.keywords)} for p in found])


def reader(candidates: Candidates, size: int, rng: random.Random) -> list[Example]:
    """A reader's examples from ``size`` random votes, on the day's papers in a random order, round again if need be."""
    day = [str(item["arxiv_id"]) for item in candidates.items]
    order = rng.sample(range(len(day)), len(day))
    vectors: dict[str, Vector] = {}
    for i in range(size):
        paper = order[i % len(day)]
        vectors[f"{day[paper]}-{i // len(day)}"] = candidates.vectors[paper]
    votes = {aid: rng.choice((1, -1)) for aid in vectors}
    return examples(candidates.corpus, votes=votes, vectors=vectors)


def timed(fn, found: Sequence[Example]) -> tuple[float, Model]:
    started = time.perf_counter()
    model = fn(found)
    return time.perf_counter() - started, model


def difference(new: Model, old: Model) -> float:
    """The largest relative difference between two models' weights (infinite if they weigh different words)."""
    if new.weights.keys() != old.weights.keys():
        return math.inf
    return max((abs(new.weights[t] - w) / abs(w) for t, w in old.weights.items()), default=0.0)


def measure(candidates: Candidates, size: int, readers: int, rng: random.Random) -> dict[str, float]:
    """Median old and new times for ``readers`` readers of ``size`` votes, and the largest difference."""
    old_times, new_times, worst, terms = [], [], 0.0, []
    for _ in range(readers):
        found = reader(candidates, size, rng)
        old_time, old = timed(primal_train, found)
        new_time, new = timed(train, found)
        old_times.append(old_time)
        new_times.append(new_time)
        worst = max(worst, difference(new, old))
        terms.append(statistics.fmean(len(ex.vector) for ex in found))
    return {"old": statistics.median(old_times), "new": statistics.median(new_times), "worst": worst,
            "terms": statistics.fmean(terms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    candidates = sample_day()
    rng = random.Random(args.seed)
    print(f"one reader's model, median of {args.readers} readers (seed {args.seed}); the sample day's "
          f"{len(candidates.items)} papers, Python {sys.version.split()[0]}")
    print(f"{'votes':>5}  {'words/example':>13}  {'old ms':>8}  {'new ms':>7}  {'× faster':>8}  "
          f"{f'{READERS_AT_SCALE:,} readers':>15}  {'largest difference':>18}")
    for size in SIZES:
        got = measure(candidates, size, args.readers, rng)
        at_scale = got["new"] * READERS_AT_SCALE
        print(f"{size:>5}  {got['terms']:>13.0f}  {got['old'] * 1e3:>8.1f}  {got['new'] * 1e3:>7.2f}  "
              f"{got['old'] / got['new']:>8.1f}  {at_scale / 60:>11.1f} min  {got['worst']:>18.1e}")


if __name__ == "__main__":
    main()
