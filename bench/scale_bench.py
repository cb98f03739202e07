"""How sending scales with the list: memory per process, and several Celery workers on one issue. Prints figures;
the machine is shared, so compare ratios, not absolute numbers.

    python bench/scale_bench.py [--subscribers 10000,30000,100000] [--batch-size 1000] [--claim-size 50]
    python bench/scale_bench.py --workers 1,2 [--subscribers 100000] [--postgres URL] [--batch-size 2000]

1. memory (the default): for each list size a fresh SQLite database is filled by one child process (sample
   papers, subscribers, the built issue); a second, fresh child process calls start_sending and then send_range
   for every planned batch, one after the other, against the fast local sink (bench/smtp_sink.py). Its RSS just
   before the first batch and its peak RSS (ru_maxrss, and VmHWM reset before the first batch where the kernel
   allows it) are printed per size, with the time and the rate. The peak should not grow with the list.
2. --workers W[,W...]: W real ``celery -A workers worker --pool=solo`` processes on a private redis-server send one
   issue together. Each run gets a fresh database (a new PostgreSQL database created through --postgres, the admin
   URL, and dropped afterwards; without --postgres a SQLite file), a counting SMTP sink and fresh workers;
   ``papermail send`` queues the issue and the database is polled until no delivery is pending, sending or
   retrying. Prints the wall time from queueing to done, the rate, each worker's share, and whether every
   subscriber got exactly one message (counted by the sink, per recipient, and in the delivery table).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the harness the tests use: tests/support

from smtp_sink import sink_dump, sink_stats, start_sink  # noqa: E402

from tests.support.services import (  # noqa: E402
    free_port,
    fresh_postgres,
    start_redis,
    start_workers,
    stop,
    wait_until,
    worker_env,
)

DAY = dt.date(2025, 3, 21)
SECRET = "bench-" + "x" * 32
BASE_URL = "https://papers.example.org"
OPEN = ("pending", "sending", "retry")


# --- helpers shared by both parts ---------------------------------------------------------------


def counts_arg(value: str) -> list[int]:
    return [int(part) for part in value.replace(" ", "").split(",") if part]


def address(i: int) -> str:
    return f"reader{i:06}@example.org"


def settings_for(database_url: str, outbox: Path, smtp_url: str | None, *, batch_size: int, claim_size: int):  # type: ignore[no-untyped-def]
    from pipeline.settings import Settings

    return Settings(_env_file=None, environment="test", secret_key=SECRET,  # type: ignore[call-arg]
                    database_url=database_url, outbox_dir=outbox, smtp_url=smtp_url, base_url=BASE_URL,
                    send_batch_size=batch_size, claim_size=claim_size)


def add_subscribers(engine, n: int, chunk: int = 5000) -> None:  # type: ignore[no-untyped-def]
    """``n`` active daily subscribers, inserted with executemany in chunks (every NOT NULL column given)."""
    from sqlalchemy import text

    insert = text(
        "INSERT INTO subscriber (email, status, uid, created_at, updated_at, paused, frequency, weekday, topics, "
        "hard_bounces) VALUES (:email, 'active', :uid, :now, :now, false, 'daily', 0, '[]', 0)"
    )
    now = dt.datetime(2025, 1, 1)
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            conn.execute(insert, [{"email": address(i), "uid": f"uid{i:06}", "now": now}
                                  for i in range(start, min(start + chunk, n))])


def prepare_issue(cfg, n: int, *, personal: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Sample papers, ``n`` subscribers and the built issue of DAY, in an empty database; with ``personal``,
    each subscriber with interests and votes of their own (``personalize``)."""
    from pipeline import service

    service.ingest(cfg, day=DAY, source="sample")
    add_subscribers(service.engine(cfg), n)
    if personal:
        personalize(service.engine(cfg), n)
    service.build(cfg, day=DAY)


def personalize(engine, n: int, seed: int = 1, chunk: int = 5000) -> None:  # type: ignore[no-untyped-def]
    """Readers as a personal list has them, drawn with a fixed seed: a third want everything, the rest name one to
    three interests (the sample papers' own keywords, categories, authors and organizations, a sixth of them
    excluded); half vote on 1 to 20 of the day's papers; the mix is 20, 50 or 80; everyone asked for the
    trending list on a day with nothing for them, so every reader gets one message."""
    import random

    from sqlalchemy import text

    from pipeline.audience.interests import Interest, dump
    from pipeline.errors import InterestError
    from pipeline.ingest.files import parse_file, sample_files

    rng = random.Random(seed)
    papers = [p for f in sample_files() for p in parse_file(f, day=DAY).papers]
    pools = {
        "keyword": sorted({k for p in papers for k in p.keywords}),
        "category": sorted({c for p in papers for c in p.categories}) or ["cs.LG", "cs.CV", "cs.CL"],
        "author": sorted({a for p in papers for a in p.authors[:2]}),
        "organization": sorted({p.organization for p in papers if p.organization}),
    }
    kinds = [k for k, pool in pools.items() if pool]
    ids = sorted({p.arxiv_id for p in papers})
    update = text("UPDATE subscriber SET topics = :topics, mix = :mix, send_anyway = true WHERE uid = :uid")
    vote = text("INSERT INTO vote (subscriber_id, arxiv_id, value, voted_at) "
                "SELECT id, :paper, :value, :now FROM subscriber WHERE uid = :uid")
    now = dt.datetime(2025, 3, 21, 12)
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            people, votes = [], []
            for i in range(start, min(start + chunk, n)):
                interests = []
                if rng.random() > 1 / 3:
                    for _ in range(rng.randint(1, 3)):
                        kind = rng.choice(kinds)
                        mode = "exclude" if rng.random() < 1 / 6 else "include"
                        try:
                            interests.append(Interest.parse(kind, rng.choice(pools[kind]), mode))
                        except InterestError:
                            pass
                people.append({"topics": json.dumps(dump(interests)), "mix": rng.choice((20, 50, 80)),
                               "uid": f"uid{i:06}"})
                if rng.random() < 0.5:
                    for paper in rng.sample(ids, rng.randint(1, min(20, len(ids)))):
                        votes.append({"paper": paper, "value": rng.choice((1, 1, -1)), "now": now, "uid": f"uid{i:06}"})
            conn.execute(update, people)
            if votes:
                conn.execute(vote, votes)


def rss_kb() -> int:
    """Current resident set size (kB)."""
    return _proc_status("VmRSS")


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm() -> bool:
    """Reset this process's VmHWM (peak RSS) so it covers what follows only (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_child(*args: str) -> dict:
    """Run this script as a fresh child process; its last stdout line is a JSON result."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE,
                          text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mb(kb: float) -> float:
    return kb / 1024


# --- part 1: memory against list size (child processes) -------------------------------------------


def child_populate(args: argparse.Namespace) -> dict:
    cfg = settings_for(args.db, Path(args.outbox), None, batch_size=args.batch_size, claim_size=args.claim_size)
    start = time.perf_counter()
    prepare_issue(cfg, args.count)
    return {"seconds": time.perf_counter() - start, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def child_send(args: argparse.Namespace) -> dict:
    """start_sending, then every planned batch through send_range in this process, one after the other."""
    from sqlalchemy import text

    from pipeline import service

    cfg = settings_for(args.db, Path(args.outbox), args.smtp, batch_size=args.batch_size, claim_size=args.claim_size)
    engine = service.engine(cfg)
    rss_start = rss_kb()
    start = time.perf_counter()
    issue_id, batches = service.start_sending(cfg, day=DAY)
    plan_seconds = time.perf_counter() - start

    rss_before = rss_kb()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_reset = reset_hwm()
    totals: collections.Counter[str] = collections.Counter()
    rss_samples = []
    start = time.perf_counter()
    for after_id, upto_id in batches:
        result = service.send_range(cfg, issue_id=issue_id, after_id=after_id, upto_id=upto_id)
        totals.update(sent=result.sent, temporary=result.temporary, permanent=result.permanent,
                      uncertain=result.uncertain, skipped=result.skipped)
        rss_samples.append(rss_kb())
    send_seconds = time.perf_counter() - start
    service.finish(cfg, issue_id=issue_id)

    with engine.connect() as conn:
        sent_rows = conn.execute(text("SELECT count(*) FROM delivery WHERE status = 'sent'")).scalar_one()
    return {
        "batches": len(batches), "plan_seconds": plan_seconds, "send_seconds": send_seconds,
        "rss_start_kb": rss_start, "rss_before_kb": rss_before, "maxrss_before_kb": maxrss_before,
        "rss_end_kb": rss_kb(), "rss_max_sampled_kb": max(rss_samples, default=rss_before),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "hwm_send_kb": _proc_status("VmHWM") if hwm_reset else None,
        "results": dict(totals), "sent_rows": sent_rows,
    }


def memory_run(n: int, port: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        common = ["--db", db, "--outbox", f"{tmp}/outbox", "--batch-size", str(args.batch_size),
                  "--claim-size", str(args.claim_size)]
        filled = run_child("--child", "populate", "--count", str(n), *common)
        sent = run_child("--child", "send", "--smtp", f"smtp://127.0.0.1:{port}", *common)
    if sent["results"].get("sent") != n or sent["sent_rows"] != n:
        print(f"  WARNING: {n:,} subscribers but {sent['results']} / {sent['sent_rows']} sent rows", file=sys.stderr)
    return {"n": n, "populate_seconds": filled["seconds"], "populate_maxrss_kb": filled["maxrss_kb"], **sent}


def memory_part(args: argparse.Namespace) -> None:
    sizes = args.subscribers or [10_000, 30_000, 100_000]
    print(f"memory: SQLite, one sending process per size, send_range batches of {args.batch_size:,} one after "
          f"the other, claim size {args.claim_size}, smtp_sink.py")
    sink, port = start_sink()
    rows = []
    try:
        for n in sizes:
            row = memory_run(n, port, args)
            rows.append(row)
            print(f"  {n:,} subscribers: filled in {row['populate_seconds']:.1f} s (that process peaked at "
                  f"{mb(row['populate_maxrss_kb']):.0f} MB), sent in {row['send_seconds']:.1f} s", flush=True)
    finally:
        sink.terminate()
        sink.wait(timeout=10)

    print()
    print(f"{'subscribers':>11} {'batches':>7} {'start s':>7} {'send s':>7} {'msg/s':>7} {'RSS start':>9} "
          f"{'RSS before':>10} {'RSS end':>8} {'peak':>7} {'send HWM':>8} {'growth':>7}")
    for r in rows:
        hwm = f"{mb(r['hwm_send_kb']):7.1f}" if r["hwm_send_kb"] else "      -"
        print(f"{r['n']:>11,} {r['batches']:>7} {r['plan_seconds']:>7.2f} {r['send_seconds']:>7.1f} "
              f"{r['n'] / r['send_seconds']:>7,.0f} {mb(r['rss_start_kb']):>9.1f} {mb(r['rss_before_kb']):>10.1f} "
              f"{mb(r['rss_end_kb']):>8.1f} {mb(r['maxrss_kb']):>7.1f} {hwm:>8} "
              f"{mb(r['maxrss_kb'] - r['rss_before_kb']):>+7.1f}")
    print("(MB; start s = start_sending: the delivery rows and the batch plan; RSS before = just before the first "
          "batch; peak = ru_maxrss of the sending process; send HWM = peak RSS since just before the first batch; "
          "growth = peak - RSS before)")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(f"peak RSS at {large['n']:,} / at {small['n']:,} subscribers: "
              f"{large['maxrss_kb'] / small['maxrss_kb']:.3f}x "
              f"({mb(large['maxrss_kb'] - small['maxrss_kb']):+.1f} MB for {large['n'] / small['n']:.3g}x the list)")


# --- part 2: several Celery workers on one issue ----------------------------------------------------


class Procs:
    """Child processes of one run, stopped (SIGTERM, then SIGKILL) in reverse order on exit.

    Each is started in a session of its own: Ctrl-C reaches only this script, which stops them in order
    (workers first).
    """

    OWN_SESSION = {"start_new_session": True}

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def add(self, *procs: subprocess.Popen) -> None:
        self.procs.extend(procs)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


def start_broker(procs: Procs, tmp: Path) -> str:
    """A private redis-server for one run: its URL."""
    port = free_port()
    procs.add(start_redis(port, tmp, **Procs.OWN_SESSION))
    return f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def fresh_database(postgres: str | None, tmp: Path) -> Iterator[str]:
    """A new PostgreSQL database next to the admin URL's (dropped WITH (FORCE) afterwards), or a SQLite file."""
    if postgres is None:
        yield f"sqlite:///{tmp}/bench.db"
        return
    with fresh_postgres(postgres, prefix="papermail_scale") as url:
        yield url


def run_env(database_url: str, broker_url: str, smtp_url: str, tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    """The environment of the workers and of ``papermail send`` in one run."""
    return worker_env(database_url, smtp_url, broker_url, SECRET_KEY=SECRET, BASE_URL=BASE_URL,
                      OUTBOX_DIR=str(tmp / "outbox"), SEND_BATCH_SIZE=str(args.batch_size),
                      CLAIM_SIZE=str(args.claim_size), RATE_LIMIT_STORAGE="memory://")


def open_deliveries(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(whether the issue's deliveries exist, whether one is still open): two index probes, cheap enough to poll
    often; counting a million rows ten times a second would take a core from the senders being measured."""
    from sqlalchemy import text

    with engine.connect() as conn:
        issue = "(SELECT id FROM issue WHERE date = :day AND edition = 'daily')"
        exists, open_ = conn.execute(text(
            f"SELECT EXISTS (SELECT 1 FROM delivery WHERE issue_id = {issue}), "
            f"EXISTS (SELECT 1 FROM delivery WHERE issue_id = {issue} AND status IN ('pending', 'sending', 'retry'))"
        ), {"day": DAY}).one()
    return int(exists), int(open_)


def wait_until_sent(cfg, engine, workers: list[subprocess.Popen], timeout: float) -> tuple[dict[str, int], list[float]]:  # type: ignore[no-untyped-def]
    """Poll the ledger until the issue's deliveries exist and none is open (twice a second, cheaply); every few
    seconds also call service.progress (what `papermail status` shows) and time it.

    Returns the counts per state and how long each progress() call took (seconds)."""
    from pipeline import service

    deadline = time.monotonic() + timeout
    next_progress, next_note = time.monotonic() + 5, time.monotonic() + 30
    took = []
    while True:
        total, open_ = open_deliveries(engine)
        if total and not open_:
            info = service.progress(cfg, day=DAY)
            return {state: n for state, n in info.counts.items() if n}, took
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker exited while sending")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not finished after {timeout:.0f} s")
        if time.monotonic() > next_progress:
            start = time.perf_counter()
            info = service.progress(cfg, day=DAY)
            took.append(time.perf_counter() - start)
            next_progress += 5
            issue = info.issue
            if issue.status.value == "paused":
                raise RuntimeError(f"the issue paused itself: {issue.paused_reason}")
            if time.monotonic() > next_note:
                counts = {state: n for state, n in info.counts.items() if n}
                print(f"    … {counts}, {info.rate:.0f} msg/s over the last minute", flush=True)
                next_note += 30
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


_DONE_LINE = re.compile(rb"papermail\.send_batch\[[^\]]+\] succeeded in [\d.]+s: \{'sent': (\d+)")


def worker_shares(logs: list[Path]) -> list[tuple[int, int]]:
    """(batches, messages sent) per worker, from the "succeeded" lines of each worker's log."""
    shares = []
    for log in logs:
        sent = [int(m.group(1)) for m in _DONE_LINE.finditer(log.read_bytes())]
        shares.append((len(sent), sum(sent)))
    return shares


def workers_run(n: int, w: int, args: argparse.Namespace) -> dict:
    from sqlalchemy import create_engine, text

    from pipeline import service

    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmpname, contextlib.ExitStack() as stack:
        tmp = Path(tmpname)
        database_url = stack.enter_context(fresh_database(args.postgres, tmp))
        stack.callback(procs.close)  # runs first: the workers stop before their database is dropped
        broker_url = start_broker(procs, tmp)
        sink, sink_port = start_sink(**Procs.OWN_SESSION)
        procs.add(sink)
        smtp_url = f"smtp://127.0.0.1:{sink_port}"

        cfg = settings_for(database_url, tmp / "outbox", smtp_url, batch_size=args.batch_size,
                           claim_size=args.claim_size)
        start = time.perf_counter()
        prepare_issue(cfg, n)
        populate_seconds = time.perf_counter() - start
        service.engine(cfg).dispose()

        env = run_env(database_url, broker_url, smtp_url, tmp, args)
        logs = [tmp / f"worker{i}.log" for i in range(w)]
        start = time.perf_counter()
        workers = start_workers(env, logs, name="bench", **Procs.OWN_SESSION)
        procs.add(*workers)
        workers_seconds = time.perf_counter() - start

        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        try:
            started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipeline", "send", "--date", DAY.isoformat()], env=env,
                           cwd=tmp, check=True, stdout=subprocess.DEVNULL, timeout=120)
            queued_seconds = time.perf_counter() - start
            states, progress_took = wait_until_sent(cfg, engine, workers, args.timeout)
            wall = time.perf_counter() - start
        except Exception:
            for log in logs:
                tail = log.read_text(errors="replace")[-2000:]
                print(f"--- {log.name} (end) ---\n{tail}", file=sys.stderr)
            raise
        with engine.connect() as conn:
            first, last = (dt.datetime.fromisoformat(v) if isinstance(v, str) else v  # SQLite: text
                           for v in conn.execute(text("SELECT min(sent_at), max(sent_at) FROM delivery")).one())
            per_subscriber = conn.execute(text(
                "SELECT count(*) FROM (SELECT subscriber_id FROM delivery WHERE status = 'sent' "
                "GROUP BY subscriber_id HAVING count(*) = 1) AS once")).scalar_one()
        wait_until(lambda: sink_stats(sink_port)[0] >= states.get("sent", 0), "the sink's count", timeout=10,
                   interval=0.1)
        received = sink_dump(sink_port, tmp / "received.json")
        worker_cpu = [cpu_seconds(p.pid) for p in workers]
        worker_hwm = [peak_rss_kb(p.pid) for p in workers]
        sink_cpu = cpu_seconds(sink.pid)
        stop(*workers)
        service.engine(cfg).dispose()
        shares = worker_shares(logs)

    expected = {address(i) for i in range(n)}
    got = set(received)
    missing, extra = len(expected - got), len(got - expected)
    duplicated = sum(1 for c in received.values() if c > 1)
    span = (last - first).total_seconds() if first and last else float("nan")
    return {
        "n": n, "workers": w, "populate_seconds": populate_seconds, "workers_seconds": workers_seconds,
        "queued_seconds": queued_seconds, "wall": wall, "span": span, "states": states, "shares": shares,
        "first_after_start": (first - started_at).total_seconds() if first else float("nan"),
        "worker_cpu": worker_cpu, "worker_hwm_kb": worker_hwm, "sink_cpu": sink_cpu,
        "progress_ms": sorted(t * 1e3 for t in progress_took),
        "sink_messages": sum(received.values()), "missing": missing, "extra": extra, "duplicated": duplicated,
        "once_in_ledger": per_subscriber,
        "exactly_once": (missing == 0 and extra == 0 and duplicated == 0 and sum(received.values()) == n
                         and per_subscriber == n and states.get("sent") == n),
    }


def workers_part(args: argparse.Namespace) -> None:
    sizes = args.subscribers or [100_000]
    backend = "PostgreSQL (a fresh database per run)" if args.postgres else "SQLite (a fresh file per run)"
    print(f"celery workers: --pool=solo, {backend}, private redis-server, counting sink; "
          f"SEND_BATCH_SIZE={args.batch_size}, CLAIM_SIZE={args.claim_size}")
    rows = []
    for n in sizes:
        for w in args.workers:
            print(f"  {n:,} subscribers, {w} worker(s): filling the database …", flush=True)
            r = workers_run(n, w, args)
            rows.append(r)
            print(f"  {n:,} subscribers, {w} worker(s): filled in {r['populate_seconds']:.1f} s, workers ready in "
                  f"{r['workers_seconds']:.1f} s, `papermail send` took {r['queued_seconds']:.1f} s, "
                  f"done {r['wall']:.1f} s after it started; ledger {r['states']}", flush=True)
            pms = r["progress_ms"]
            progress = (f"; service.progress() took {pms[len(pms) // 2]:.0f} ms median, {pms[-1]:.0f} ms max "
                        f"({len(pms)} calls while sending)") if pms else ""
            print(f"    first message sent {r['first_after_start']:.1f} s after `papermail send` started; CPU s: workers "
                  f"{', '.join(f'{c:.0f}' for c in r['worker_cpu'])}, sink {r['sink_cpu']:.0f}; worker peak RSS MB: "
                  f"{', '.join(f'{mb(k):.0f}' for k in r['worker_hwm_kb'])}{progress}", flush=True)
            print(f"    sink: {r['sink_messages']:,} messages, {r['missing']} subscribers missing, "
                  f"{r['duplicated']} got more than one, {r['extra']} unknown recipients; ledger: "
                  f"{r['once_in_ledger']:,} subscribers with exactly one sent row", flush=True)

    print()
    print(f"{'subscribers':>11} {'workers':>7} {'wall s':>7} {'msg/s':>7} {'queued s':>8} {'span s':>7} {'msg/s':>7} "
          f"{'speed-up':>8}  {'per worker: batches/messages':<30} exactly once")
    base: dict[int, float] = {}
    for r in rows:
        rate = r["n"] / r["wall"]
        base.setdefault(r["n"], rate)
        shares = ", ".join(f"{b}/{m:,}" for b, m in r["shares"])
        print(f"{r['n']:>11,} {r['workers']:>7} {r['wall']:>7.1f} {rate:>7,.0f} {r['wall'] - r['queued_seconds']:>8.1f} "
              f"{r['span']:>7.1f} "
              f"{r['n'] / r['span']:>7,.0f} {rate / base[r['n']]:>7.2f}x  {shares:<30} "
              f"{'yes' if r['exactly_once'] else 'NO'}")
    print("(wall = from starting `papermail send` until no delivery is open; queued = the same from when that "
          "command returned; span = first to last sent_at in the ledger; speed-up = wall rate against the first "
          "worker count listed)")


# --- entry point ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=counts_arg,
                        help="list sizes, comma-separated (default 10000,30000,100000; with --workers 100000)")
    parser.add_argument("--workers", type=counts_arg, help="run part 2 with these worker counts, e.g. 1,2")
    parser.add_argument("--postgres", help="part 2: admin URL of a PostgreSQL server; a database is created and "
                                           "dropped per run (default: SQLite)")
    parser.add_argument("--batch-size", type=int, help="SEND_BATCH_SIZE (default 1000; with --workers 2000)")
    parser.add_argument("--claim-size", type=int, default=50, help="CLAIM_SIZE (default 50)")
    parser.add_argument("--timeout", type=float, default=900, help="part 2: seconds to wait for one send")
    parser.add_argument("--child", choices=("populate", "send"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--outbox", help=argparse.SUPPRESS)
    parser.add_argument("--smtp", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_size is None:
        args.batch_size = 2000 if args.workers else 1000

    if args.child:
        result = child_populate(args) if args.child == "populate" else child_send(args)
        print(json.dumps(result))
        return

    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C: stop the children, drop the database
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    if args.workers:
        workers_part(args)
    else:
        memory_part(args)


if __name__ == "__main__":
    main()
