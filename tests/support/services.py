"""Real local services: free ports, a private redis-server, a fresh PostgreSQL database, ``celery worker`` processes.

Shared by the tests (through conftest.py's fixtures) and the benches. Only the standard library is imported
here at module level: the benches measure the memory of processes that import this module, so psycopg and
redis are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.support.paths import ROOT

T = TypeVar("T")

QUEUES = ("papermail", "papermail.send")  # every queue workers/ routes a task to
WORKER_SECRET = "worker-test-secret-0123456789abcdef"
BASE_URL = "https://papers.example.org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], T], what: str, *, timeout: float = 15, interval: float = 0.05,
               proc: subprocess.Popen | None = None) -> T:
    """Poll ``predicate`` until it returns something true, and return that.

    Fails (AssertionError, so a test reports a failure) after ``timeout`` seconds, or as soon as
    ``proc`` exits: a process that died will not become ready.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({timeout:.0f} s)")
        time.sleep(interval)


def stop(*procs: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to every one first (a worker's warm shutdown, all at once), then SIGKILL any still running."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- redis-server -------------------------------------------------------------------------------


def redis_answers(port: int) -> bool:
    """Whether a Redis server on ``port`` answers PING (spoken raw: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(port: int, data: Path, *, appendonly: bool = False, **popen: Any) -> subprocess.Popen:
    """A redis-server on 127.0.0.1:``port`` with its files in ``data``, returned once it answers.

    No snapshots; ``appendonly`` keeps an append-only file as production does, so that a server
    started again on the same ``data`` still has its queues.
    """
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is needed for the queue tests and benches (scripts/test installs it)")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes" if appendonly else "no", "--dir", str(data)],
                            stdout=subprocess.DEVNULL, **popen)
    try:
        wait_until(lambda: redis_answers(port), f"redis-server on port {port}", timeout=20, proc=proc)
    except BaseException:
        stop(proc, timeout=10)
        raise
    return proc


# --- PostgreSQL ---------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_postgres(admin_url: str, *, prefix: str = "papermail_test") -> Iterator[str]:
    """The URL of a new, empty database on ``admin_url``'s server, dropped WITH (FORCE) afterwards.

    ``admin_url`` is a SQLAlchemy URL whose user may create databases; the new one differs only in its name.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- celery workers -----------------------------------------------------------------------------


def worker_env(database_url: str, smtp_url: str, broker_url: str, **variables: str) -> dict[str, str]:
    """The environment of a worker, or of a ``papermail`` command queueing work for one, on these services.

    This process's environment without any DKIM_ or SEND_RATE_ setting of the machine's (they would
    change what is sent and how fast), a test secret and base URL, then ``variables`` (``CLAIM_SIZE="5"``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DKIM_", "SEND_RATE_"))}
    env.update({"DATABASE_URL": database_url, "BROKER_URL": broker_url, "SMTP_URL": smtp_url,
                "SECRET_KEY": WORKER_SECRET, "ENVIRONMENT": "test", "BASE_URL": BASE_URL})
    env.update(variables)
    return env


def start_worker(env: dict[str, str], log: Path, *, concurrency: int = 0, name: str = "test",
                 **popen: Any) -> subprocess.Popen:
    """A real ``celery worker`` process on every queue, logging to ``log``: the solo pool (one process,
    so SIGKILL kills all of it), or with ``concurrency`` a prefork pool of that many child processes."""
    pool = ["--pool=prefork", f"--concurrency={concurrency}"] if concurrency else ["--pool=solo"]
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", *pool, "--loglevel=INFO",
             "-Q", ",".join(QUEUES), "--without-gossip", "--without-mingle",
             "--hostname", f"{name}-{time.time_ns()}@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, **popen,
        )


def worker_ready(log: Path) -> bool:
    """Whether the worker logging to ``log`` is consuming (Celery logs "celery@host ready.")."""
    return log.exists() and b" ready." in log.read_bytes()


def start_workers(env: dict[str, str], logs: list[Path], *, concurrency: int = 0, name: str = "test",
                  timeout: float = 60, **popen: Any) -> list[subprocess.Popen]:
    """One worker per log file, returned once every one is consuming, so that no task queued next
    goes to the first worker only because the others were still starting."""
    workers = [start_worker(env, log, concurrency=concurrency, name=f"{name}{i}", **popen)
               for i, log in enumerate(logs)]
    try:
        for proc, log in zip(workers, logs):
            wait_until(lambda log=log: worker_ready(log), f"worker {log.name} to start", timeout=timeout, proc=proc)
    except BaseException:
        stop(*workers)
        raise
    return workers


def wait_idle(broker: Any, timeout: float = 60) -> None:
    """Until no task is queued or running on ``broker`` (a redis.Redis); acks_late keeps a running task
    in 'unacked', and the second look half a second later catches a task that queues another."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(broker.llen(q) == 0 for q in QUEUES) and broker.hlen("unacked") == 0:
            time.sleep(0.5)
            if all(broker.llen(q) == 0 for q in QUEUES) and broker.hlen("unacked") == 0:
                return
        time.sleep(0.2)
    raise AssertionError("the worker did not finish in time")
