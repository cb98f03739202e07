"""Real Celery workers killed with SIGKILL mid-batch, and a Redis broker restarted mid-send."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.support.cli import papermail
from tests.support.sending import ledger_by_address as ledger
from tests.support.services import QUEUES, free_port, start_redis, start_worker, stop, wait_until, worker_env
from tests.support.smtp import SMTPScript

DAY = "2025-03-21"


def base_env(tmp_path: Path, database_url: str, smtp_url: str, broker: str) -> dict[str, str]:
    return worker_env(database_url, smtp_url, broker, LEASE_SECONDS="2", CLAIM_SIZE="4", SEND_BATCH_SIZE="10",
                      BROKER_VISIBILITY_TIMEOUT="5", OUTBOX_DIR=str(tmp_path / "outbox"))


@pytest.mark.parametrize("smtp_script", [SMTPScript(delay=0.03)], ids=["slow-smtp"])
def test_workers_killed_mid_batch_leave_each_subscriber_at_most_once(tmp_path, database_url, smtp_server,
                                                                    smtp_script, redis_url):
    handler, smtp_url = smtp_server
    client = redis.Redis.from_url(redis_url)
    env = base_env(tmp_path, database_url, smtp_url, redis_url)
    emails = [f"reader{i:02}@example.org" for i in range(60)]
    papermail(tmp_path, "subscribers", "add", *emails, env=env)
    papermail(tmp_path, "run", "--source", "sample", env=env)

    rng = random.Random(11)
    log = tmp_path / "workers.log"
    kills = 0
    for _ in range(3):
        worker = start_worker(env, log)
        target = len(handler.messages) + rng.randint(3, 9)
        try:
            wait_until(lambda target=target: len(handler.messages) >= target, "the worker to send", timeout=60)
        finally:
            os.kill(worker.pid, signal.SIGKILL)  # no warning, no cleanup: as the OOM killer does it
            worker.wait()
        kills += 1
    time.sleep(2.5)  # the dead workers' leases run out
    worker = start_worker(env, log)
    try:
        papermail(tmp_path, "send", "--date", DAY, env=env)  # an operator resumes: the ledger decides who is left
        wait_until(lambda: not any(s in ("pending", "sending", "retry") for s in ledger(database_url).values()),
                   "the send to finish", timeout=90)
        # The killed workers' tasks stay "unacked" in Redis until their visibility timeout hands them back;
        # the queues themselves must drain.
        wait_until(lambda: all(client.llen(q) == 0 for q in QUEUES), "the queues to drain", timeout=30)
    finally:
        stop(worker)

    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert max(received.values()) == 1, [a for a, n in received.items() if n > 1]
    rows = ledger(database_url)
    uncertain = {e for e, s in rows.items() if s == "uncertain"}
    assert set(rows.values()) <= {"sent", "uncertain"}
    assert len(uncertain) <= kills
    assert set(emails) - set(received) <= uncertain  # nobody lost silently: they are listed as uncertain
    status = papermail(tmp_path, "status", "--date", DAY, env=env).stdout
    assert all(address in status for address in uncertain)


@pytest.mark.parametrize("smtp_script", [SMTPScript(delay=0.02)], ids=["slow-smtp"])
def test_the_send_completes_after_a_redis_restart(tmp_path, smtp_server, smtp_script, database_url):
    """A broker of its own, with an append-only file as in production, stopped and started mid-send."""
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (scripts/test installs it)"
    handler, smtp_url = smtp_server
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()

    broker_url = f"redis://127.0.0.1:{port}/0"
    env = base_env(tmp_path, database_url, smtp_url, broker_url)
    emails = [f"reader{i:02}@example.org" for i in range(50)]
    redis_proc = start_redis(port, data, appendonly=True)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        papermail(tmp_path, "subscribers", "add", *emails, env=env)
        papermail(tmp_path, "run", "--source", "sample", env=env)
        wait_until(lambda: len(handler.messages) >= 8, "the send to start", timeout=60)
        redis_proc.terminate()  # the broker goes away mid-send...
        redis_proc.wait(timeout=10)
        time.sleep(1.0)
        # ...and comes back with its queue from the append-only file
        redis_proc = start_redis(port, data, appendonly=True)
        wait_until(lambda: not any(s in ("pending", "sending", "retry") for s in ledger(database_url).values()),
                   "the send to complete after the restart", timeout=120)
    finally:
        stop(worker)
        stop(redis_proc, timeout=10)
    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert sorted(received) == sorted(emails) and max(received.values()) == 1
