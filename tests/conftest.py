"""Shared fixtures: real databases (SQLite file, PostgreSQL), a real SMTP server, a real Redis, settings.

Built on the harness in tests/support, which the benches use too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

from pipeline.settings import Settings
from tests.support.services import free_port, fresh_postgres, start_redis, stop
from tests.support.smtp import RecordingHandler, SMTPScript, recording_server

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# No deadline on generated examples: a slow one on a busy machine is not a wrong one (benches measure speed).
hypothesis.settings.register_profile("papermail", deadline=None)
hypothesis.settings.load_profile("papermail")


# --- databases --------------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres(POSTGRES_URL) as url:
        yield url
        from pipeline.db.engine import engine_for
        from pipeline.service.context import _ready_engine

        # The cached engines hold connections to the database about to be dropped.
        _ready_engine.cache_clear()
        engine_for.cache_clear()


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
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(proc, timeout=10)


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


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def smtp_script(request: pytest.FixtureRequest) -> SMTPScript:
    """Every SMTP test runs against a server without and with PIPELINING (RFC 2920)."""
    return SMTPScript(pipelining=request.param)


@pytest.fixture
def smtp_server(smtp_script: SMTPScript) -> Iterator[tuple[RecordingHandler, str]]:
    """A real aiosmtpd server on a free port: (handler, smtp_url)."""
    with recording_server(smtp_script) as served:
        yield served


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


@pytest.fixture
def cfg(make_settings, database_url):  # noqa: ANN001, ANN201
    """Settings on each database, SQLite and PostgreSQL; a module that needs others defines its own."""
    return make_settings(database_url=database_url)


@pytest.fixture
def client(cfg):  # noqa: ANN001, ANN201
    """The site for ``cfg``, its confirmation mails recorded instead of sent."""
    from fastapi.testclient import TestClient

    from pipeline.web.app import create_app
    from tests.support.web import Recorder

    with TestClient(create_app(cfg, send_confirmation=Recorder(cfg))) as c:
        yield c


# --- a real browser -------------------------------------------------------------------------------


def _chromium(*extra_args: str):  # noqa: ANN202
    """Debian's Chromium under Playwright, found and flagged as `papermail preview --png` does."""
    from pipeline.compose.screenshots import CHROMIUM_ARGS, chromium_path
    from pipeline.errors import RenderError

    try:
        executable = chromium_path()
    except RenderError as exc:
        pytest.fail(f"{exc}; scripts/test installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(executable), args=[*CHROMIUM_ARGS, *extra_args])
        yield launched
        launched.close()


@pytest.fixture
def browser():  # noqa: ANN201
    yield from _chromium()


@pytest.fixture
def forced_dark_browser():  # noqa: ANN201
    """Chromium darkening every page itself, whatever its styles say, as some mail apps do."""
    yield from _chromium("--enable-features=WebContentsForceDark")
