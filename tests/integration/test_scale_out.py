"""Several real ``celery worker`` processes, each with a prefork pool, sending one issue together."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import create_engine, text

from pipeline import service
from pipeline.models import utcnow
from pipeline.settings import Settings
from tests.support import services
from tests.support.cli import papermail
from tests.support.services import QUEUES, wait_idle, worker_env
from tests.support.smtp import SMTPScript

DAY = "2025-03-21"
READERS = [f"reader{i:03}@example.org" for i in range(240)]
SCALE = {"SEND_BATCH_SIZE": "20", "CLAIM_SIZE": "5", "OUTBOX_DIR": "unused"}
_SUCCEEDED = re.compile(r"/(ForkPoolWorker-\d+)\] Task papermail\.send_batch\[[^\]]+\] succeeded")


def start_workers(env: dict[str, str], tmp_path: Path, count: int) -> list[tuple[subprocess.Popen, Path]]:
    """``count`` workers, two pool processes each, all listening before anything is queued."""
    logs = [tmp_path / f"worker{i}.log" for i in range(count)]
    return list(zip(services.start_workers(env, logs, concurrency=2), logs))


def stop(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    services.stop(*(proc for proc, _ in workers))


def batch_runners(workers: list[tuple[subprocess.Popen, Path]]) -> Counter[tuple[int, str]]:
    """(worker, pool process) -> how many send batches it completed, read from the workers' logs."""
    return Counter((i, name) for i, (_, log) in enumerate(workers) for name in _SUCCEEDED.findall(log.read_text()))


def ledger(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return Counter(dict(conn.execute(text("SELECT status, COUNT(*) FROM delivery GROUP BY status")).all()))
    finally:
        engine.dispose()


@pytest.fixture
def scale_env(tmp_path, database_url, smtp_server, redis_url):
    _, smtp_url = smtp_server
    env = worker_env(database_url, smtp_url, redis_url)
    env.update({**SCALE, "OUTBOX_DIR": str(tmp_path / "outbox")})
    papermail(tmp_path, "subscribers", "add", *READERS, env=env)
    return env


@pytest.mark.parametrize("smtp_script", [SMTPScript(delay=0.01, pipelining=True)], ids=["slow-smtp"])
def test_two_prefork_workers_send_one_issue_together_once_each(tmp_path, scale_env, smtp_server, database_url,
                                                              broker, smtp_script):
    handler, _ = smtp_server
    workers = start_workers(scale_env, tmp_path, 2)
    try:
        papermail(tmp_path, "run", "--source", "sample", env=scale_env)  # ingest, build, fan out: all on the workers
        wait_idle(broker, timeout=120)
    finally:
        stop(workers)

    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert sorted(received) == READERS and set(received.values()) == {1}
    assert ledger(database_url) == Counter({"sent": len(READERS)})
    runners = batch_runners(workers)
    assert sum(runners.values()) == len(READERS) // 20  # every batch ran once, on some pool process
    assert {worker for worker, _ in runners} == {0, 1}, runners  # both worker processes took part
    assert len(runners) >= 3, runners  # and several pool processes at the same time


@pytest.mark.parametrize("smtp_script", [SMTPScript(delay=0.01)], ids=["slow-smtp"])
def test_every_batch_task_delivered_twice_still_sends_each_subscriber_once(tmp_path, scale_env, smtp_server,
                                                                           database_url, redis_url, broker,
                                                                           smtp_script):
    """As when the broker redelivers a task whose acknowledgement was lost: both copies run, in parallel."""
    handler, _ = smtp_server
    cfg = Settings(_env_file=None, **{k.lower(): v for k, v in scale_env.items()  # type: ignore[arg-type]
                                      if k in ("DATABASE_URL", "SECRET_KEY", "BASE_URL", "ENVIRONMENT", *SCALE)})
    service.ingest(cfg, day=service.sample_day(), source="sample")  # the issue is made here; only sending is queued
    service.build(cfg, day=service.sample_day(), now=utcnow())
    issue_id, batches = service.start_sending(cfg, day=service.sample_day())
    assert len(batches) == len(READERS) // 20

    client = Celery(broker=redis_url)
    workers = start_workers(scale_env, tmp_path, 2)
    try:
        for after_id, upto_id in batches:
            for _ in range(2):
                client.send_task("papermail.send_batch", args=[issue_id, after_id, upto_id], queue=QUEUES[1])
        wait_idle(broker, timeout=120)
    finally:
        stop(workers)

    received = Counter(r for m in handler.messages for r in m.rcpt)
    assert sorted(received) == READERS and set(received.values()) == {1}, received.most_common(3)
    assert sum(batch_runners(workers).values()) == 2 * len(batches)  # both copies of every task did run
    assert ledger(database_url) == Counter({"sent": len(READERS)})
    assert "finished" in papermail(tmp_path, "status", "--date", DAY, env=scale_env).stdout
