"""Schema migrations (Alembic), run by the application itself.

``pipeline.db.engine.create_schema`` calls :func:`upgrade` once per process, so nobody
runs a migration by hand; ``papermail migrate`` does the same on demand. The
revisions live in ``pipeline/migrations/versions`` and ship inside the package.

A database that ``SQLModel.metadata.create_all`` made before migrations existed
has the tables but no ``alembic_version``: if it holds everything the initial
revision creates it is stamped at that revision, otherwise it is refused.

Two processes starting at once are safe: the upgrade runs in one transaction
that first takes the database's lock (``pg_advisory_xact_lock`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so the second waits and then finds it done.

A new revision, after editing ``pipeline/models.py`` (the database at head)::

    alembic revision --autogenerate --rev-id NNNN -m "what changed"   # NNNN: the next number
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from pipeline import models  # noqa: F401  (registers the tables)
from pipeline.errors import ConfigError

SCRIPTS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema that create_all made before there were migrations
_PG_LOCK_KEY = 0x7061706572  # "paper": the advisory lock everyone migrating a database takes
_process_lock = threading.Lock()  # alembic's `context` and `op` are module globals: one run per process
# The module that defines the tables: imported before comparing, or a comparison (check,
# autogenerate) would take its tables for strays to drop. Upgrades do not need it.
TABLE_MODULES = ("pipeline.models",)


def register_tables() -> None:
    """Put every papermail table on SQLModel.metadata (importing a module registers its tables)."""
    for name in TABLE_MODULES:
        importlib.import_module(name)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render the models' own column types (UTCDateTime, SQLModel's AutoString) as the plain
    SQLAlchemy types they store, so that revisions import nothing from the application."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


# Shared by env.py (upgrades, autogenerate) and check(), so both compare alike.
CONTEXT_OPTIONS: dict[str, Any] = {
    "target_metadata": SQLModel.metadata,
    "compare_type": True,
    "render_as_batch": True,  # SQLite cannot ALTER most things: batch ops copy the table
    "render_item": render_item,
}


def config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged scripts, migrating through ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        url = connection.engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str | None:
    """The newest revision this version of papermail knows."""
    return ScriptDirectory.from_config(config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The database's revision; None for an empty database or one made before migrations."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision (a quick no-op when it is there already)."""
    if current(engine) == head():
        return
    with _migrating(engine) as conn:
        if MigrationContext.configure(conn).get_current_revision() is None:
            _adopt(conn)
        try:
            command.upgrade(config(conn), "head")
        except CommandError as exc:  # e.g. a revision only a newer papermail knows
            url = engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"cannot migrate the database {url}: {exc}") from None


def downgrade(engine: Engine, revision: str) -> None:
    """Go back to ``revision`` ("base" drops every table); for developers and tests."""
    with _migrating(engine) as conn:
        command.downgrade(config(conn), revision)


def check(engine: Engine) -> list[str]:
    """What differs between the models and the database, one line each; empty when they agree."""
    register_tables()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=CONTEXT_OPTIONS)
        return [_describe(diff) for diff in compare_metadata(context, SQLModel.metadata)]


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction holding this process's lock and the database's migration lock."""
    with _process_lock, engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if conn.dialect.name != "sqlite":
            yield conn
            conn.commit()
            return
        try:
            # Batch operations copy a table and drop the old one, which enforced foreign keys forbid;
            # the pragma works only outside a transaction, and foreign_key_check stands in for it.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # The write lock now, not at the first write: a second process waits (busy_timeout) and
            # then reads the finished schema. SQLite's DDL is transactional inside it.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise ConfigError(f"a migration left {broken[0]} rows whose {broken[2]} is missing; nothing was changed")
            conn.commit()
        finally:
            conn.rollback()  # nothing left to undo after the commit
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # the pooled connection goes back as make_engine set it
            conn.commit()


def _adopt(conn: Connection) -> None:
    """Stamp a database made by create_all before migrations existed; refuse one that lacks parts."""
    inspector = inspect(conn)
    have = {name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()}
    want = _baseline_tables()
    if not have.keys() & want.keys():
        return  # none of our tables: the upgrade creates them all
    missing = [f"{table}.{col}" for table, cols in want.items() if table in have for col in cols if col not in have[table]]
    missing += [table for table in want if table not in have]
    if missing:
        url = conn.engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"the database {url} was created by an older papermail and lacks {', '.join(missing[:5])}"
            f"{' …' if len(missing) > 5 else ''}; move it aside (a new one is created) or migrate it"
        )
    command.stamp(config(conn), BASELINE)


@lru_cache(maxsize=1)
def _baseline_tables() -> dict[str, list[str]]:
    """The tables and columns the initial revision creates, read back from a scratch in-memory database."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            command.upgrade(config(conn), BASELINE)
            inspector = inspect(conn)
            return {
                name: [c["name"] for c in inspector.get_columns(name)]
                for name in inspector.get_table_names()
                if name != "alembic_version"
            }
    finally:
        scratch.dispose()


def _describe(diff: Any) -> str:
    """One of compare_metadata's tuples (or a list of them for one column) as a line of text."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    op, *rest = diff
    if op.startswith("modify_"):
        _schema, table, column, _existing, old, new = rest
        return f"{op} {table}.{column}: {old!r} -> {new!r}"
    if op in ("add_column", "remove_column"):
        return f"{op} {rest[1]}.{rest[2].name}"
    obj = rest[0]
    table = getattr(getattr(obj, "table", None), "name", None)
    name = getattr(obj, "name", None) or obj
    return f"{op} {table}.{name}" if table and table != name else f"{op} {name}"
