"""Shared fixtures: real databases (SQLite file, PostgreSQL), a real SMTP server, settings."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from pipeline.settings import Settings

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).parent / "fixtures"


# --- databases --------------------------------------------------------------------------------


def _pg_admin_dsn() -> str:
    url = make_url(POSTGRES_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"papermail_test_{secrets.token_hex(6)}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    from pipeline.db.engine import engine_for
    from pipeline.service.context import _ready_engine

    _ready_engine.cache_clear()
    engine_for.cache_clear()
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'papermail.db'}"
    return request.getfixturevalue("postgres_url")


# --- a real Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this test run's own on a free port (base URL, no database number).

    Private so that two test runs on one machine never flush each other's queues.
    TEST_REDIS_URL points the tests at an existing server instead.
    """
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"].rstrip("/")
        return
    server = shutil.which("redis-server")
    assert server, "redis-server is needed for the queue tests (.ci/run installs it)"
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(data)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not _redis_answers(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """Database 0 of the private server, empty at the start and the end of a test."""
    import redis

    url = f"{redis_server}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def broker(redis_url: str) -> Iterator[object]:
    """A client of the private Redis, for looking at the Celery queues."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# --- a real SMTP server -----------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class SMTPScript:
    """How the server answers: per-recipient replies, a drop after DATA, a delay."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: set[str] = field(default_factory=set)
    delay: float = 0.0
    pipelining: bool = False
    refuse_login: bool = False  # answer every AUTH with 535, as for bad credentials


class RecordingHandler:
    def __init__(self, script: SMTPScript) -> None:
        self.script = script
        self.messages: list[Received] = []
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.script.pipelining:  # aiosmtpd reads commands one by one, so it copes with pipelined ones
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        reply = self.script.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        rcpt = envelope.rcpt_tos[0]
        if rcpt in self.script.drop_after_data:
            self.script.drop_after_data.discard(rcpt)
            server.transport.abort()  # the message arrived, the reply never leaves
            with self.lock:
                self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            return "250 OK"
        reply = self.script.data_replies.get(rcpt)
        if reply:
            return reply
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def smtp_script(request: pytest.FixtureRequest) -> SMTPScript:
    """Every SMTP test runs against a server without and with PIPELINING (RFC 2920)."""
    return SMTPScript(pipelining=request.param)


@pytest.fixture
def smtp_server(smtp_script: SMTPScript) -> Iterator[tuple[RecordingHandler, str]]:
    """A real aiosmtpd server on a free port: (handler, smtp_url)."""
    handler = RecordingHandler(smtp_script)
    port = free_port()
    auth: dict[str, object] = {}
    if smtp_script.refuse_login:
        from aiosmtpd.smtp import AuthResult

        auth = {"authenticator": lambda *args: AuthResult(success=False, handled=False), "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **auth)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


# --- settings ---------------------------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path):  # noqa: ANN201
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "environment": "test",
            "secret_key": "test-secret-" + "x" * 24,
            "database_url": f"sqlite:///{tmp_path / 'papermail.db'}",
            "outbox_dir": tmp_path / "outbox",
            "base_url": "https://papers.example.org",
            "mail_from": "Trending ML Papers <digest@papers.example.org>",
            "list_id": "trending.papers.example.org",
            "broker_url": None,
            "smtp_url": None,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build
