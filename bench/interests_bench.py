"""How fast readers' interests are matched against an issue. Prints figures, asserts nothing.

    python bench/interests_bench.py [--readers 100000] [--papers 50] [--seed 1]

The papers are the stored sample day (45 real items, repeated to --papers with their ids changed), each
given two arXiv categories and an organization. The readers' interests are drawn from those papers' own
words, authors, organizations and categories, so that many match: 40 % of readers have none
(everything), the rest 1 to 10, a twentieth of those the full 50, one in five of each an exclude.
Times: ``prepare`` (once per paper per issue), ``compile_interests`` (once per reader, its caches cleared
first, so that every distinct set of interests is compiled), and ``match`` for every reader against every
paper.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.audience import interests as mod  # noqa: E402
from pipeline.audience.interests import MAX_INTERESTS, Interest, compile_interests, match, prepare  # noqa: E402
from pipeline.ingest import hf  # noqa: E402

SAMPLE = ROOT / "pipeline" / "ingest" / "data" / "hf_daily_papers_2025-03-21_0600Z.json"
CATEGORIES = ["cs.LG", "cs.CV", "cs.CL", "cs.AI", "stat.ML", "cs.RO", "eess.IV", "cs.IR"]
ORGANIZATIONS = ["Google DeepMind", "Meta AI", "Tsinghua University", "Hugging Face", "NVIDIA", "ByteDance Seed"]


def papers(n: int, rng: random.Random) -> list[dict[str, object]]:
    found = hf.parse_day(SAMPLE.read_bytes(), day=dt.date(2025, 3, 21)).papers
    items = []
    for i in range(n):
        p = found[i % len(found)]
        items.append({"arxiv_id": f"{p.arxiv_id}-{i}", "title": p.title, "summary": p.summary or p.abstract,
                      "abstract": p.abstract, "keywords": list(p.keywords), "authors": list(p.authors),
                      "categories": rng.sample(CATEGORIES, 2), "organization": rng.choice(ORGANIZATIONS)})
    return items


def readers(n: int, items: list[dict[str, object]], rng: random.Random) -> list[list[Interest]]:
    words = sorted({w for p in items for w in str(p["title"]).split() if len(w) > 4 and w.isalpha()})
    phrases = [" ".join(str(p["title"]).split()[i:i + 2]) for p in items for i in range(0, 6, 2)]
    authors = sorted({a for p in items for a in p["authors"]})  # type: ignore[attr-defined]
    pools = {"keyword": words + phrases, "author": authors + [a.split()[-1] for a in authors],
             "category": CATEGORIES, "organization": ORGANIZATIONS + ["Google", "Meta"]}
    out: list[list[Interest]] = []
    for _ in range(n):
        if rng.random() < 0.4:
            out.append([])
            continue
        count = MAX_INTERESTS if rng.random() < 0.05 else rng.randint(1, 10)
        mine: dict[tuple[str, ...], Interest] = {}
        while len(mine) < count:
            kind = rng.choice(["keyword", "keyword", "keyword", "author", "category", "organization"])
            try:
                it = Interest.parse(kind, rng.choice(pools[kind]), "exclude" if rng.random() < 0.2 else "include")
            except Exception:  # noqa: BLE001  (a word the rules refuse)
                continue
            mine.setdefault(it.identity, it)
        out.append(list(mine.values()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    items = papers(args.papers, rng)
    people = readers(args.readers, items, rng)
    total_interests = sum(map(len, people))

    mod.stem.cache_clear()
    start = time.perf_counter()
    keys = [prepare(p) for p in items]
    prepared = time.perf_counter() - start

    mod._compile.cache_clear()
    mod._keys.cache_clear()
    start = time.perf_counter()
    compiled = [compile_interests(r) for r in people]
    compiling = time.perf_counter() - start

    start = time.perf_counter()
    kept = 0
    for reader in compiled:
        for paper in keys:
            kept += match(paper, reader).included
    matching = time.perf_counter() - start

    pairs = args.readers * args.papers
    print(f"{args.papers} papers, {args.readers} readers with {total_interests} interests "
          f"({sum(1 for r in people if not r)} with none)")
    print(f"prepare  {prepared * 1000:8.1f} ms   ({prepared / args.papers * 1000:.2f} ms a paper, "
          f"{sum(len(k.keys) for k in keys) / len(keys):.0f} keys a paper)")
    print(f"compile  {compiling:8.2f} s    ({compiling / args.readers * 1e6:.1f} µs a reader)")
    print(f"match    {matching:8.2f} s    ({matching / pairs * 1e9:.0f} ns a reader and paper; "
          f"{kept / pairs:.0%} of pairs kept)")


if __name__ == "__main__":
    main()
