"""Does the subscribe form take longer for some addresses than for others? Prints medians per address state.

    python bench/subscribe_timing.py [--requests 300] [--postgres URL]

The answer must not tell a stranger whether an address is subscribed (OWASP account enumeration):
the same status and page for every state, and about the same time. The requests are interleaved
(new, pending, active, unsubscribed, bounced, new, ...) so the machine's noise falls on all alike;
the confirmation mail step is a no-op here, as it runs after the answer in the real site.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from sqlmodel import Session  # noqa: E402

from pipeline import service  # noqa: E402
from pipeline.models import Subscriber, SubscriberStatus  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.web import create_app  # noqa: E402

STATES = ("new", "pending", "active", "unsubscribed", "bounced")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per state")
    parser.add_argument("--postgres", help="a PostgreSQL URL (a database of its own; it gets tables)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{tmp}/bench.db"
        cfg = Settings(_env_file=None, database_url=url, outbox_dir=Path(tmp) / "outbox",
                       subscribe_rate_limit="1000000/minute")
        with Session(service.engine(cfg)) as session:
            for state in STATES[1:]:
                for i in range(args.requests):
                    session.add(Subscriber(email=f"{state}{i}@example.org", status=SubscriberStatus(state)))
            session.commit()
        times: dict[str, list[float]] = {state: [] for state in STATES}
        answers: dict[str, set[tuple[int, str]]] = {state: set() for state in STATES}
        with TestClient(create_app(cfg, send_confirmation=lambda _id: None)) as client:
            for i in range(args.requests):
                for state in STATES:
                    start = time.perf_counter()
                    r = client.post("/subscribe", data={"email": f"{state}{i}@example.org"})
                    times[state].append(time.perf_counter() - start)
                    answers[state].add((r.status_code, r.text))
    base = statistics.median(times["new"])
    print(f"POST /subscribe, {args.requests} requests per state, {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'state':<14}{'median ms':>10}{'p90 ms':>9}{'÷ new':>8}")
    for state in STATES:
        ordered = sorted(times[state])
        median = statistics.median(ordered)
        print(f"{state:<14}{median * 1000:>10.2f}{ordered[int(len(ordered) * 0.9)] * 1000:>9.2f}{median / base:>8.2f}")
    distinct = set().union(*answers.values())
    print(f"distinct answers (status, page) across all states: {len(distinct)}")


if __name__ == "__main__":
    main()
