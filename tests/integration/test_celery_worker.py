"""The same daily job on a real Redis broker and a real ``celery worker`` process."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.support.cli import papermail
from tests.support.services import start_worker, stop, wait_idle, worker_env

DAY = "2025-03-21"


@pytest.fixture
def worker(tmp_path, database_url, smtp_server, broker, redis_url):
    _, smtp_url = smtp_server
    env = worker_env(database_url, smtp_url, redis_url)
    proc = start_worker(env, tmp_path / "worker.log")
    yield env
    stop(proc, timeout=20)


def issue_status(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM issue WHERE date = :d"), {"d": DAY}).scalar()
    finally:
        engine.dispose()


def test_run_enqueues_and_the_worker_does_the_job_once(tmp_path, worker, broker, smtp_server, database_url):
    handler, _ = smtp_server
    papermail(tmp_path, "init", "--demo", env=worker)
    queued = papermail(tmp_path, "run", "--source", "sample", env=worker)
    assert "queued" in queued.stdout
    wait_idle(broker)
    assert issue_status(database_url) == "finished", (tmp_path / "worker.log").read_text()[-3000:]
    received = sorted(r for m in handler.messages for r in m.rcpt)
    assert received == ["ada@example.org", "alan@example.org", "grace@example.org"]
    msg = handler.messages[0].message
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Training-Free Efficient Video Generation" in msg["Subject"]

    papermail(tmp_path, "run", "--source", "sample", env=worker)
    wait_idle(broker)
    assert len(handler.messages) == 3  # the ledger makes the second run a no-op
    status = papermail(tmp_path, "status", "--date", DAY, env=worker)
    assert "3 sent" in status.stdout
