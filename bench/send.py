"""How close papermail sends to the speed of the wire: the floor, the real pipeline and the embedded default,
measured in one run against the same counting sink (bench/smtp_sink.py). Prints figures; the machine is shared,
so quote ratios and medians, not single absolute numbers.

    python bench/send.py [--n 100000] [--db postgres|sqlite] [--workers 2] [--dkim [ed25519|rsa]] [--personal]
                         [--only floor,celery,embedded] [--json FILE] [--postgres ADMIN_URL]

floor     N copies of one subscriber's message (the sample day's issue, as papermail renders it), pushed by W
          processes, each over one reused connection: MAIL/RCPT/DATA pipelined, only the recipient substituted,
          dot-stuffing by bytes.replace. Also with one process, the embedded default's floor.
celery    `papermail send` on a fresh database (PostgreSQL: a new database on --postgres's server; or a SQLite
          file) with N subscribers, through one `celery -A workers worker -Q papermail,papermail.send` (prefork,
          --concurrency W, as the README starts it) on a private redis-server. --dkim repeats it with signing on.
          --personal repeats it with every reader's own interests and votes (a personal digest each, joined from
          the issue's blocks), and reports the distinct selections and the time `papermail send` took to decide them.
embedded  `papermail send` with no broker (one process) on a fresh SQLite file.

For each: wall time, messages/s, the ratio to the floor with as many processes, CPU seconds and peak RSS of each
sending process, the time per stage summed over batches (claim, build, smtp, ledger), and whether the sink got
exactly N distinct recipients once each and the ledger has N `sent` rows. With --json the figures are appended
to FILE as one JSON object per line (bench/plot.py reads them).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from scale_bench import (  # noqa: E402
    DAY,
    SECRET,
    Procs,
    address,
    cpu_seconds,
    fresh_database,
    peak_rss_kb,
    prepare_issue,
    settings_for,
    start_broker,
    wait_until_sent,
)
from smtp_sink import sink_dump, sink_stats, start_sink  # noqa: E402

from pipeline.delivery.batch import STAGES  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from tests.support.services import stop, wait_until, worker_env, worker_ready  # noqa: E402

DEFAULTS = Settings.model_fields

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SENDER = b"digest@papermail.localhost"


def busy_seconds() -> float:
    """CPU time spent by every process on the machine so far (user, nice, system, irq, softirq), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}


# --- the message -------------------------------------------------------------------------------


def one_message(tmp: Path, args: argparse.Namespace) -> bytes:
    """The first subscriber's copy of the sample day's issue, as papermail builds it (not dot-stuffed)."""
    from sqlmodel import Session

    from pipeline import service
    from pipeline.delivery.personalize import RecipientFactory, build_template

    cfg = settings_for(f"sqlite:///{tmp}/message.db", tmp / "outbox", None, batch_size=args.batch_size,
                       claim_size=args.claim_size)
    prepare_issue(cfg, 1)
    with Session(service.engine(cfg)) as session:
        issue = service.issue_for(session, DAY)
        issue.send_started_at = issue.built_at
        template = build_template(issue, service.send_context(cfg))
        recipient = RecipientFactory(issue, service.send_context(cfg))(address(0), "uid000000")
    service.engine(cfg).dispose()
    return template.render(recipient)


# --- the floor ---------------------------------------------------------------------------------


def floor_child(args: argparse.Namespace) -> dict[str, Any]:
    """One floor sender: connect, say EHLO, wait for "go" on stdin, send every ``step``-th message."""
    message = Path(args.message).read_bytes()
    first_rcpt = address(0).encode()
    sock = socket.create_connection(("127.0.0.1", args.port))
    replies = sock.makefile("rb")

    def reply() -> bytes:
        while True:
            line = replies.readline()
            if line[3:4] != b"-":
                return line

    reply()
    sock.sendall(b"EHLO floor\r\n")
    reply()
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(args.first, args.count, args.step):
        rcpt = address(i).encode()
        data = message.replace(first_rcpt, rcpt).replace(b"\r\n.", b"\r\n..")
        sock.sendall(b"MAIL FROM:<" + SENDER + b">\r\nRCPT TO:<" + rcpt + b">\r\nDATA\r\n")
        for _ in range(3):
            reply()
        sock.sendall(data + b".\r\n")
        if not reply().startswith(b"250"):
            raise SystemExit("the sink refused a message")
    sock.sendall(b"QUIT\r\n")
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}


def floor_run(n: int, processes: int, message: Path) -> dict[str, Any]:
    procs = Procs()
    try:
        sink, port = start_sink(**Procs.OWN_SESSION)
        procs.add(sink)
        senders = [subprocess.Popen(
            [sys.executable, __file__, "--child", "floor", "--message", str(message), "--port", str(port),
             "--first", str(i), "--step", str(processes), "--count", str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT) for i in range(processes)]
        procs.add(*senders)
        for s in senders:
            assert s.stdout is not None and s.stdout.readline().strip() == "ready"
        busy = busy_seconds()
        start = time.perf_counter()
        for s in senders:
            assert s.stdin is not None
            s.stdin.write("go\n")
            s.stdin.flush()
        results = [json.loads(s.communicate(timeout=3600)[0].strip().splitlines()[-1]) for s in senders]
        wall = time.perf_counter() - start
        busy = busy_seconds() - busy
        messages, distinct, dup = sink_stats(port)
        sink_cpu = cpu_seconds(sink.pid)
    finally:
        procs.close()
    return {"kind": "floor", "processes": processes, "n": n, "wall": wall, "cpu": [r["cpu"] for r in results],
            "sink_cpu": sink_cpu, "rss_mb": [], "stages": {}, "machine_cpu": busy,
            "exactly_once": messages == n and distinct == n and dup == 0, "sent_rows": None}


# --- the pipeline on Celery workers ------------------------------------------------------------


def pool_children(pid: int) -> list[int]:
    """The prefork pool's processes of a celery worker."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


_SUCCEEDED = re.compile(r"papermail\.send_batch\[[^\]]+\] succeeded in [\d.]+s: (\{.*\})")


def stages_from_log(text: str) -> dict[str, float]:
    """Seconds per stage summed over the send batches a worker's log reports."""
    total = dict.fromkeys(STAGES, 0.0)
    for match in _SUCCEEDED.finditer(text):
        for stage, seconds in ast.literal_eval(match.group(1)).get("seconds", {}).items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def dkim_key(tmp: Path, algorithm: str) -> dict[str, str]:
    """DKIM settings with a fresh key of ``algorithm``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519" else rsa.generate_private_key(65537, 2048)
    path = tmp / f"dkim-{algorithm}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return {"DKIM_SELECTOR": "bench", "DKIM_PRIVATE_KEY_FILE": str(path)}


def distinct_selections(database_url: str) -> tuple[int, int]:
    """(distinct selections, personal ones) of the issue."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT personal, COUNT(*) FROM selection GROUP BY personal")).all()
    finally:
        engine.dispose()
    found = {bool(personal): count for personal, count in rows}
    return sum(found.values()), found.get(True, 0)


def ledger_sent(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM delivery WHERE status = 'sent'")).scalar_one()


def sent_span(engine: Any) -> tuple[dt.datetime, dt.datetime]:
    """The first and the last sent_at in the ledger (naive UTC)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        first, last = conn.execute(text("SELECT min(sent_at), max(sent_at) FROM delivery")).one()
    return tuple(dt.datetime.fromisoformat(v) if isinstance(v, str) else v for v in (first, last))  # type: ignore[return-value]


def sink_and_issue(procs: Procs, database_url: str, tmp: Path, n: int, args: argparse.Namespace,
                   personal: bool = False) -> tuple:
    """A fresh counting sink, and the sample day's issue built for ``n`` subscribers in the database (each with
    interests and votes of their own if ``personal``)."""
    from pipeline import service

    sink, port = start_sink(**Procs.OWN_SESSION)
    procs.add(sink)
    smtp_url = f"smtp://127.0.0.1:{port}"
    cfg = settings_for(database_url, tmp / "outbox", smtp_url, batch_size=args.batch_size, claim_size=args.claim_size)
    prepare_issue(cfg, n, personal=personal)
    service.engine(cfg).dispose()
    return sink, port, smtp_url, cfg


def celery_run(n: int, processes: int, args: argparse.Namespace, *, dkim: str | None = None,
               personal: bool = False) -> dict[str, Any]:
    from sqlalchemy import create_engine

    from pipeline import service

    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="send-bench-") as tmpname, contextlib.ExitStack() as stack:
        tmp = Path(tmpname)
        database_url = stack.enter_context(fresh_database(args.postgres if args.db == "postgres" else None, tmp))
        stack.callback(procs.close)  # the workers stop before their database is dropped
        broker_url = start_broker(procs, tmp)
        sink, port, smtp_url, cfg = sink_and_issue(procs, database_url, tmp, n, args, personal=personal)

        env = worker_env(database_url, smtp_url, broker_url, SECRET_KEY=SECRET, OUTBOX_DIR=str(tmp / "outbox"),
                         SEND_BATCH_SIZE=str(args.batch_size), CLAIM_SIZE=str(args.claim_size),
                         RATE_LIMIT_STORAGE="memory://", **(dkim_key(tmp, dkim) if dkim else {}))
        log = tmp / "worker.log"
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "papermail,papermail.send",
                 "--loglevel=INFO", f"--concurrency={processes}", "--hostname", f"bench-{time.time_ns()}@%h"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.add(worker)
        wait_until(lambda: worker_ready(log), "the worker to start", timeout=60, proc=worker)
        children = pool_children(worker.pid)

        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        busy = busy_seconds()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "send", "--date", DAY.isoformat()], env=env, cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL, timeout=3600)
        queued = time.perf_counter() - start  # the recipients snapshotted, their selections decided, batches queued
        try:
            states, status_seconds = wait_until_sent(cfg, engine, [worker], args.timeout)
        except Exception:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        wall = time.perf_counter() - start
        busy = busy_seconds() - busy
        wait_until(lambda: sink_stats(port)[0] >= states.get("sent", 0), "the sink's count", timeout=30,
                   interval=0.1)
        received = sink_dump(port, tmp / "received.json")
        cpu = [cpu_seconds(pid) for pid in children]
        rss = [peak_rss_kb(pid) / 1024 for pid in children]
        sink_cpu = cpu_seconds(sink.pid)
        sent_rows = ledger_sent(engine)
        first, last = sent_span(engine)
        selections = distinct_selections(database_url)
        stop(worker)
        stages = stages_from_log(log.read_text(errors="replace"))
        service.engine(cfg).dispose()
    once = len(received) == n and all(c == 1 for c in received.values()) and set(received) == {
        address(i) for i in range(n)}
    return {"kind": "celery" + (f"+dkim-{dkim}" if dkim else "") + ("+personal" if personal else ""), "db": args.db,
            "processes": processes, "n": n, "queued": queued, "selections": selections,
            "wall": wall, "cpu": cpu, "sink_cpu": sink_cpu, "rss_mb": rss, "stages": stages, "machine_cpu": busy,
            "status_ms": sorted(s * 1e3 for s in status_seconds), "states": states,
            "first_sent_after": (first - started_at).total_seconds(), "sending": (last - first).total_seconds(),
            "exactly_once": once and sent_rows == n, "sent_rows": sent_rows}


# --- the embedded default ----------------------------------------------------------------------


def embedded_child(args: argparse.Namespace) -> dict[str, Any]:
    """`papermail send` in this process (no broker), with the batches' stage times collected from its log."""
    import logging

    from pipeline.cli.base import app

    stages = dict.fromkeys(STAGES, 0.0)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            result = getattr(record, "batch_result", None)
            if result is not None:
                for stage, seconds in result.seconds.items():
                    stages[stage] += seconds

    daily = logging.getLogger("pipeline.service.daily")
    daily.addHandler(Collect())
    daily.setLevel(logging.INFO)
    logging.getLogger("pipeline").addHandler(logging.NullHandler())  # keep the CLI from adding its own
    try:
        app(["send", "--date", DAY.isoformat()], standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    return {"stages": stages}


def embedded_run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import create_engine

    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="send-bench-") as tmpname:
        tmp = Path(tmpname)
        database_url = f"sqlite:///{tmp}/papermail.db"
        try:
            sink, port, smtp_url, cfg = sink_and_issue(procs, database_url, tmp, n, args)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DKIM_", "SEND_RATE_", "BROKER_"))}
            env.update(DATABASE_URL=database_url, SMTP_URL=smtp_url, SECRET_KEY=SECRET, ENVIRONMENT="test",
                       BASE_URL=cfg.base_url, OUTBOX_DIR=str(tmp / "outbox"), SEND_BATCH_SIZE=str(args.batch_size),
                       CLAIM_SIZE=str(args.claim_size))
            busy = busy_seconds()
            start = time.perf_counter()
            child = subprocess.Popen([sys.executable, __file__, "--child", "embedded"], cwd=tmp, env=env,
                                     stdout=subprocess.PIPE, text=True)
            assert child.stdout is not None
            out = child.stdout.read()
            _pid, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            busy = busy_seconds() - busy
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode:
                raise RuntimeError(f"the embedded send exited with {child.returncode}")
            stages = json.loads(out.strip().splitlines()[-1])["stages"]
            wait_until(lambda: sink_stats(port)[0] >= n, "the sink's count", timeout=30, interval=0.1)
            received = sink_dump(port, tmp / "received.json")
            sink_cpu = cpu_seconds(sink.pid)
            engine = create_engine(database_url)
            sent_rows = ledger_sent(engine)
            engine.dispose()
        finally:
            procs.close()
    once = len(received) == n and all(c == 1 for c in received.values())
    return {"kind": "embedded", "db": "sqlite", "processes": 1, "n": n, "wall": wall,
            "cpu": [usage.ru_utime + usage.ru_stime], "sink_cpu": sink_cpu, "rss_mb": [usage.ru_maxrss / 1024],
            "stages": stages, "machine_cpu": busy, "exactly_once": once and sent_rows == n, "sent_rows": sent_rows}


# --- report ------------------------------------------------------------------------------------


def report(rows: list[dict[str, Any]]) -> None:
    floors = {r["processes"]: r["n"] / r["wall"] for r in rows if r["kind"] == "floor"}
    print()
    print(f"{'run':<24} {'procs':>5} {'n':>9} {'wall s':>8} {'msg/s':>7} {'x floor':>7} {'CPU s per process':>18} "
          f"{'sink CPU':>8} {'peak RSS MB':>12}  {'claim/build/smtp/ledger s':<27} exactly N")
    for r in rows:
        rate = r["n"] / r["wall"]
        floor = floors.get(r["processes"])
        r["rate"], r["ratio"] = rate, (floor / rate if floor else None)
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        stages = "/".join(f"{r['stages'].get(s, 0):.1f}" for s in STAGES) if r["stages"] else "-"
        rss = ", ".join(f"{m:.0f}" for m in r["rss_mb"]) or "-"
        label = r["kind"] + (f" ({r['db']})" if r.get("db") else "")
        print(f"{label:<24} {r['processes']:>5} {r['n']:>9,} {r['wall']:>8.1f} {rate:>7,.0f} {ratio:>7} "
              f"{', '.join(f'{c:.1f}' for c in r['cpu']):>18} {r['sink_cpu']:>8.1f} {rss:>12}  {stages:<27} "
              f"{'yes' if r['exactly_once'] else 'NO'}")
        if r.get("machine_cpu") is not None:
            own = sum(r["cpu"]) + r["sink_cpu"]
            print(f"{'':<24} the machine was {r['machine_cpu'] / (r['wall'] * (os.cpu_count() or 1)):.0%} busy; "
                  f"CPU s outside the senders and the sink (database, broker, kernel, anything else): "
                  f"{r['machine_cpu'] - own:.1f}")
        if r.get("sending"):
            print(f"{'':<24} first message {r['first_sent_after']:.1f} s after `papermail send` started; first to last "
                  f"message {r['sending']:.1f} s ({r['n'] / r['sending']:,.0f} msg/s)")
        if r.get("selections"):
            total, own = r["selections"]
            print(f"{'':<24} {total:,} distinct selections ({own:,} personal); `papermail send` (snapshot, "
                  f"selections, queueing) took {r['queued']:.1f} s")
        if r.get("status_ms"):
            ms = r["status_ms"]
            print(f"{'':<24} `papermail status` (service.progress) while sending: median {statistics.median(ms):.0f} "
                  f"ms, max {ms[-1]:.0f} ms over {len(ms)} calls")
    print("(x floor = the floor's rate with as many processes / this rate; stages are summed over every batch "
          "and process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="subscribers (default 100000)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres",
                        help="the celery run's database (default postgres)")
    parser.add_argument("--postgres", default=ADMIN_URL, help=f"admin URL of the PostgreSQL server (default {ADMIN_URL})")
    parser.add_argument("--workers", type=int, default=2, help="sending processes (default 2)")
    parser.add_argument("--dkim", nargs="?", const="ed25519", choices=("ed25519", "rsa"),
                        help="also run the celery case with DKIM signing (default key: ed25519)")
    parser.add_argument("--personal", action="store_true",
                        help="also run the celery case with readers' own interests and votes (bench/scale_bench.py "
                             "personalize): personal digests, against the global one in the same run")
    parser.add_argument("--only", default="floor,celery,embedded", help="which runs, comma-separated")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["send_batch_size"].default,
                        help="SEND_BATCH_SIZE (default: the setting's own)")
    parser.add_argument("--claim-size", type=int, default=DEFAULTS["claim_size"].default,
                        help="CLAIM_SIZE (default: the setting's own)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for one send")
    parser.add_argument("--json", type=Path, help="append each run's figures to this file (JSON lines)")
    parser.add_argument("--child", choices=("floor", "embedded"), help=argparse.SUPPRESS)
    parser.add_argument("--message", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(floor_child(args) if args.child == "floor" else embedded_child(args)))
        return

    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C: stop the children, drop the database
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    only = set(args.only.split(","))
    info = machine()
    print(f"{args.n:,} subscribers; {info['cores']} cores, {info['cpu']}; Python {info['python']}; "
          f"SEND_BATCH_SIZE={args.batch_size}, CLAIM_SIZE={args.claim_size}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="send-bench-") as tmpname:
        tmp = Path(tmpname)
        message = tmp / "message.eml"
        message.write_bytes(one_message(tmp, args))
        print(f"message: {len(message.read_bytes()) / 1000:.1f} kB", flush=True)
        if "floor" in only:
            # One process too when the embedded default (one process) is measured against it.
            for processes in sorted({args.workers, 1} if "embedded" in only else {args.workers}, reverse=True):
                rows.append(floor_run(args.n, processes, message))
                print(f"  floor, {processes} process(es): {rows[-1]['wall']:.1f} s", flush=True)
    if "celery" in only:
        rows.append(celery_run(args.n, args.workers, args))
        print(f"  celery ({args.db}), {args.workers} process(es): {rows[-1]['wall']:.1f} s", flush=True)
        if args.personal:
            rows.append(celery_run(args.n, args.workers, args, personal=True))
            print(f"  celery ({args.db}), personal digests: {rows[-1]['wall']:.1f} s", flush=True)
        if args.dkim:
            rows.append(celery_run(args.n, args.workers, args, dkim=args.dkim))
            print(f"  celery ({args.db}) with DKIM ({args.dkim}): {rows[-1]['wall']:.1f} s", flush=True)
    if "embedded" in only:
        rows.append(embedded_run(args.n, args))
        print(f"  embedded (sqlite), 1 process: {rows[-1]['wall']:.1f} s", flush=True)
    report(rows)
    if args.json:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with args.json.open("a") as out:
            for r in rows:
                out.write(json.dumps({**r, "machine": info, "at": stamp}) + "\n")
    if not all(r["exactly_once"] for r in rows):
        raise SystemExit("a run did not deliver exactly one message to each subscriber")


if __name__ == "__main__":
    main()
