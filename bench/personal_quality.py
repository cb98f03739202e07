"""How good a personal digest gets as its reader votes: a simulation with a fixed seed.

    python bench/personal_quality.py [--readers 150] [--seed 11]

A made-up world: each day 50 papers, each about one or two of 24 topics (its title and summary use the
topic's words among words every paper uses), with a heavy-tailed trend score. Each reader secretly likes two
topics. Every day they get their digest (``pipeline.digest.personal.select``, 10 papers, mix 0.7 "mostly for
me", their model retrained on their votes) and vote on three of its papers: "more" on one about a topic they
like, "less" otherwise, and one vote in ten the other way (people misclick, or change their minds). After 0, 5
and 20 votes, their digest for a day they have not seen is scored: precision@10, the share of its papers about
a topic they like. The global list (the same top 10 for everyone) is scored on the same day. A second group
of readers also names one of their topics as a keyword interest before their first vote.

The world is invented, so the figures say the machinery learns from votes, not how real readers will fare.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.audience.interests import Interest, Kind, Mode, compile_interests  # noqa: E402
from pipeline.digest.personal import Candidates, select  # noqa: E402
from pipeline.digest.relevance import examples, train  # noqa: E402

TOPICS = {
    "diffusion": "diffusion denoising sampler", "speech": "speech audio recognition",
    "robotics": "robot manipulation grasping", "graphs": "graph message passing",
    "reinforcement": "reinforcement reward policy", "retrieval": "retrieval augmented search",
    "vision-language": "vision language captioning", "quantization": "quantization low-bit compression",
    "medical": "medical clinical imaging", "code": "code generation programming",
    "math": "mathematical reasoning theorem", "agents": "agent tool planning",
    "video": "video temporal frames", "3d": "mesh point cloud reconstruction",
    "time series": "forecasting temporal series", "privacy": "privacy differential federated",
    "safety": "alignment safety jailbreak", "recommendation": "recommendation ranking users",
    "chemistry": "molecule chemistry protein", "translation": "translation multilingual languages",
    "optimization": "optimizer convergence gradient", "tabular": "tabular spreadsheet columns",
    "weather": "weather climate precipitation", "music": "music melody composition",
}
COMMON = ("model models training large efficient benchmark data results method approach performance learning "
          "neural network experiments state-of-the-art scale framework").split()
PAPERS_A_DAY = 50
DIGEST = 10
VOTES_A_DAY = 3
NOISE = 0.1
MIX = 0.7
CHECKPOINTS = (0, 5, 20)


def make_day(rng: random.Random, day: int) -> tuple[list[dict], dict[str, set[str]]]:
    """50 papers as frozen items ranked by trend, and each paper's topics."""
    names = list(TOPICS)
    papers, topics_of = [], {}
    for n in range(PAPERS_A_DAY):
        topics = set(rng.sample(names, rng.choice((1, 1, 2))))
        topic_words = [w for t in topics for w in TOPICS[t].split()]
        title = " ".join(rng.sample(topic_words, min(3, len(topic_words))) + rng.sample(COMMON, 2))
        body = " ".join(rng.choice(topic_words) if rng.random() < 0.35 else rng.choice(COMMON) for _ in range(40))
        arxiv_id = f"25{day:02d}.{n:05d}"
        papers.append({"arxiv_id": arxiv_id, "title": title.capitalize(), "summary": body,
                       "score": rng.lognormvariate(0, 1.2)})
        topics_of[arxiv_id] = topics
    papers.sort(key=lambda p: -p["score"])
    return papers, topics_of


def precision(picked: list[str], topics_of: dict[str, set[str]], liked: set[str]) -> float:
    return sum(1 for aid in picked if topics_of[aid] & liked) / len(picked)


def simulate(readers: int, seed: int, declare: bool) -> dict[str, dict[int, list[float]]]:
    rng = random.Random(seed)
    exam, exam_topics = make_day(random.Random(seed + 1), 99)
    exam_candidates = Candidates(exam)
    global_top = [p["arxiv_id"] for p in exam[:DIGEST]]
    figures: dict[str, dict[int, list[float]]] = {"global": {c: [] for c in CHECKPOINTS},
                                                  "personal": {c: [] for c in CHECKPOINTS}}
    days = [make_day(random.Random(seed + 100 + d), d) for d in range(12)]
    day_candidates = [Candidates(items) for items, _ in days]
    for _ in range(readers):
        liked = set(rng.sample(list(TOPICS), 2))
        named = TOPICS[sorted(liked)[0]].split()[0]  # the first word of one of their topics
        interests = compile_interests([Interest(Kind.keyword, named, Mode.include)] if declare else [])
        votes: dict[str, int] = {}
        vectors: dict = {}
        checkpoints = list(CHECKPOINTS)
        for (items, topics_of), candidates in zip(days, day_candidates, strict=True):
            vectors.update({item["arxiv_id"]: v for item, v in zip(items, candidates.vectors, strict=True)})
            # Retrained before every digest, as the votes changed; its interests are read against the exam day.
            model = train(examples(exam_candidates.corpus, votes=votes, vectors=vectors))
            while checkpoints and len(votes) >= checkpoints[0]:
                picks = select(exam_candidates, interests=interests, model=model, mix=MIX, size=DIGEST)
                figures["personal"][checkpoints[0]].append(precision([p.arxiv_id for p in picks], exam_topics, liked))
                figures["global"][checkpoints[0]].append(precision(global_top, exam_topics, liked))
                checkpoints.pop(0)
            if not checkpoints:
                break
            shown = select(candidates, interests=interests, model=model, mix=MIX, size=DIGEST)
            for pick in rng.sample(shown, VOTES_A_DAY):
                likes = bool(topics_of[pick.arxiv_id] & liked) != (rng.random() < NOISE)
                votes[pick.arxiv_id] = 1 if likes else -1
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=150)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.perf_counter()
    plain = simulate(args.readers, args.seed, declare=False)
    declared = simulate(args.readers, args.seed, declare=True)
    print(f"precision@{DIGEST} of the digest on an unseen day ({args.readers} readers per group, seed {args.seed}, "
          f"mix {MIX}); a synthetic world, so this tests the machinery, not the world")
    print(f"{'votes':>6}  {'global list':>12}  {'personal':>9}  {'personal, one interest named':>29}")
    for checkpoint in CHECKPOINTS:
        g = statistics.fmean(plain["global"][checkpoint])
        p = statistics.fmean(plain["personal"][checkpoint])
        d = statistics.fmean(declared["personal"][checkpoint])
        print(f"{checkpoint:>6}  {g:>12.2f}  {p:>9.2f}  {d:>29.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
