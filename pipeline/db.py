"""Engines and sessions. SQLite gets WAL and a busy timeout so several workers can share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, create_engine

from pipeline import models  # noqa: F401  (registers the tables)
from pipeline.errors import ConfigError


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL per process."""
    return make_engine(url)


def create_schema(engine: Engine) -> None:
    """Create missing tables, and refuse a database whose existing tables lack columns this version uses."""
    SQLModel.metadata.create_all(engine)
    inspector = inspect(engine)
    missing = [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name not in {c["name"] for c in inspector.get_columns(table.name)}
    ]
    if missing:
        url = engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"the database {url} was created by an older papermail and lacks {', '.join(missing[:5])}"
            f"{' …' if len(missing) > 5 else ''}; move it aside (a new one is created) or migrate it"
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
