"""How long deciding every reader's selection takes when an issue's recipients are snapshotted: the first time
(every reader with votes or keyword interests has their model trained) and the next issue's (their models are
kept: trained again only for readers whose votes changed). Prints figures; the machine is shared, so quote
ratios and medians.

    python bench/selections_bench.py [--n 10000] [--changed 0.05]

Readers as bench/scale_bench.py's ``personalize`` makes them (a third want everything, the rest name one to three
interests, half vote on 1 to 20 papers), on a fresh SQLite file with the sample day's issue. The second pass
undoes the first's selections and adds one vote for ``--changed`` of the readers, as a day of feedback would.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from scale_bench import DAY, prepare_issue, settings_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="readers (default 10000)")
    parser.add_argument("--changed", type=float, default=0.05, help="share of readers who voted again (0.05)")
    args = parser.parse_args()

    from sqlalchemy import text
    from sqlmodel import select

    from pipeline import service
    from pipeline.db.engine import session_scope
    from pipeline.delivery import selections
    from pipeline.delivery.ledger import open_deliveries
    from pipeline.models import Issue, utcnow

    with tempfile.TemporaryDirectory(prefix="selections-bench-") as tmp:
        cfg = settings_for(f"sqlite:///{tmp}/bench.db", Path(tmp) / "outbox", None, batch_size=1000, claim_size=200)
        prepare_issue(cfg, args.n, personal=True)
        engine = service.engine(cfg)
        timings = []
        for run in ("first issue", "next issue"):
            with session_scope(engine) as session:
                issue = session.exec(select(Issue)).one()
                if run == "first issue":
                    open_deliveries(session, issue=issue, now=utcnow(), default_size=10)
                else:
                    session.execute(text("UPDATE delivery SET selection_id = NULL, status = 'pending'"))
                    session.execute(text("DELETE FROM selection"))
                    ids = [r[0] for r in session.execute(text("SELECT id FROM subscriber")).all()]
                    papers = [item["arxiv_id"] for item in issue.items]
                    rng = random.Random(2)
                    for sid in rng.sample(ids, int(len(ids) * args.changed)):
                        session.execute(text("DELETE FROM vote WHERE subscriber_id = :s AND arxiv_id = :p"),
                                        {"s": sid, "p": papers[0]})
                        session.execute(text("INSERT INTO vote (subscriber_id, arxiv_id, value, voted_at) "
                                             "VALUES (:s, :p, 1, '2025-03-22 08:00:00')"), {"s": sid, "p": papers[0]})
                trained = []
                real = selections.train
                selections.train = lambda found, trained=trained, real=real: trained.append(1) or real(found)  # type: ignore[assignment]
                started = time.perf_counter()
                report = selections.assign(session, issue=issue, now=utcnow())
                seconds = time.perf_counter() - started
                selections.train = real  # type: ignore[assignment]
            timings.append(seconds)
            print(f"{run}: {args.n:,} readers ({report.personal:,} personal, {len(trained):,} models trained) in "
                  f"{seconds:.1f} s: {seconds / args.n * 1e3:.2f} ms a reader; {report.selections:,} distinct "
                  f"selections", flush=True)
        print(f"the next issue takes {timings[1] / timings[0]:.2f} of the first's time ({DAY}, one process, SQLite)")


if __name__ == "__main__":
    main()
