"""Alembic's environment: how the revisions in versions/ reach a database.

The application passes its own open connection in ``config.attributes["connection"]``
(see ``pipeline.db.migrate``, which also holds the lock and commits). The ``alembic``
command line (alembic.ini at the repository root) connects to ``sqlalchemy.url``,
or to DATABASE_URL from the settings when that is empty.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from pipeline.db.migrate import CONTEXT_OPTIONS, register_tables

config = context.config
if "connection" not in config.attributes:
    register_tables()  # the alembic command line: autogenerate compares against every table


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from pipeline.settings import get_settings

    return get_settings().database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **CONTEXT_OPTIONS)
    with context.begin_transaction():  # joins the caller's transaction when there is one
        context.run_migrations()


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the SQL instead of running it."""
    context.configure(url=_url(), literal_binds=True, **CONTEXT_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from pipeline.db.engine import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if config.config_file_name is not None:
    fileConfig(config.config_file_name)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
