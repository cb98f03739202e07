"""The same daily job on a real Redis broker and a real ``celery worker`` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

DAY = "2025-03-21"
QUEUES = ("papermail", "papermail.send")


def env_for(database_url: str, smtp_url: str, broker_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "SMTP_URL": smtp_url,
        "SECRET_KEY": "worker-test-secret-0123456789abcdef",
        "ENVIRONMENT": "test",
        "BASE_URL": "https://papers.example.org",
    })
    return env


def start_worker(env: dict[str, str], log: Path, *, concurrency: int = 0) -> subprocess.Popen:
    """A real ``celery worker`` process: the solo pool (one process, so SIGKILL kills all of it),
    or with ``concurrency`` a prefork pool of that many child processes."""
    pool = ["--pool=prefork", f"--concurrency={concurrency}"] if concurrency else ["--pool=solo"]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", *pool, "--loglevel=INFO",
         "-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle", "--hostname", f"test-{time.time_ns()}@%h"],
        cwd=Path(__file__).resolve().parents[2], env=env, stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


@pytest.fixture
def worker(tmp_path, database_url, smtp_server, broker, redis_url):
    _, smtp_url = smtp_server
    env = env_for(database_url, smtp_url, redis_url)
    proc = start_worker(env, tmp_path / "worker.log")
    yield env
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def papermail(env, cwd, *args):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, cwd=cwd, check=True,
                          capture_output=True, text=True, timeout=60)


def wait_idle(broker: redis.Redis, timeout: float = 60) -> None:
    """Until no task is queued or running (acks_late keeps a running task in 'unacked')."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(broker.llen(q) == 0 for q in QUEUES) and broker.hlen("unacked") == 0:
            time.sleep(0.5)
            if all(broker.llen(q) == 0 for q in QUEUES) and broker.hlen("unacked") == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the worker did not finish in time")


def issue_status(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM issue WHERE date = :d"), {"d": DAY}).scalar()
    finally:
        engine.dispose()


def test_run_enqueues_and_the_worker_does_the_job_once(tmp_path, worker, broker, smtp_server, database_url):
    handler, _ = smtp_server
    papermail(worker, tmp_path, "init", "--demo")
    queued = papermail(worker, tmp_path, "run", "--source", "sample")
    assert "queued" in queued.stdout
    wait_idle(broker)
    assert issue_status(database_url) == "finished", (tmp_path / "worker.log").read_text()[-3000:]
    received = sorted(r for m in handler.messages for r in m.rcpt)
    assert received == ["ada@example.org", "alan@example.org", "grace@example.org"]
    msg = handler.messages[0].message
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Training-Free Efficient Video Generation" in msg["Subject"]

    papermail(worker, tmp_path, "run", "--source", "sample")
    wait_idle(broker)
    assert len(handler.messages) == 3  # the ledger makes the second run a no-op
    status = papermail(worker, tmp_path, "status", "--date", DAY)
    assert "3 sent" in status.stdout
