"""Alembic migrations, run by the application itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel, select

from pipeline import migrate
from pipeline.db import create_schema, make_engine
from pipeline.errors import ConfigError
from pipeline.models import Subscriber

ROOT = Path(__file__).resolve().parents[2]
TABLES = {t.name for t in SQLModel.metadata.sorted_tables}


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_an_empty_database_is_upgraded_to_exactly_what_the_models_describe(engine):
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head() == "0001"
    assert tables(engine) == TABLES | {"alembic_version"}
    assert migrate.check(engine) == []


def test_a_second_upgrade_changes_nothing(engine):
    create_schema(engine)
    with Session(engine) as session:
        session.add(Subscriber(email="ada@example.org"))
        session.commit()
    create_schema(engine)
    migrate.upgrade(engine)
    assert migrate.current(engine) == "0001"
    with Session(engine) as session:
        assert session.exec(select(Subscriber.email)).all() == ["ada@example.org"]


def test_check_names_what_differs(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE paper ADD COLUMN extra INTEGER"))
    assert migrate.check(engine) == ["remove_column paper.extra"]


def test_a_database_made_by_create_all_before_migrations_is_stamped_and_then_works(engine):
    SQLModel.metadata.create_all(engine)  # the old way
    with Session(engine) as session:
        session.add(Subscriber(email="old@example.org"))
        session.commit()
    assert migrate.current(engine) is None
    create_schema(engine)
    assert migrate.current(engine) == "0001"
    assert migrate.check(engine) == []
    with Session(engine) as session:
        session.add(Subscriber(email="new@example.org"))
        session.commit()
        assert sorted(session.exec(select(Subscriber.email)).all()) == ["new@example.org", "old@example.org"]


def test_an_older_database_that_lacks_columns_is_refused_and_left_alone(engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE subscriber (id INTEGER PRIMARY KEY, email VARCHAR(320))"))
    with pytest.raises(ConfigError, match=r"lacks subscriber\.status, subscriber\.uid, .* …; move it aside"):
        create_schema(engine)
    assert tables(engine) == {"subscriber"}
    assert migrate.current(engine) is None


def test_two_threads_creating_the_schema_at_once_both_succeed(database_url):
    engines = [make_engine(database_url) for _ in range(2)]
    start, errors = threading.Barrier(2), []

    def run(engine) -> None:
        start.wait()
        try:
            create_schema(engine)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert all(migrate.current(e) == "0001" for e in engines)
    for e in engines:
        e.dispose()


def test_two_processes_creating_the_schema_at_once_both_succeed(database_url):
    code = "import sys; from pipeline.db import create_schema, make_engine; create_schema(make_engine(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, database_url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    engine = make_engine(database_url)
    assert migrate.current(engine) == "0001" and migrate.check(engine) == []
    engine.dispose()


def test_downgrading_the_initial_revision_drops_every_table(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert tables(engine) <= {"alembic_version"}
    assert migrate.current(engine) is None
    migrate.upgrade(engine)  # and back up again
    assert migrate.check(engine) == []


def test_the_migrate_command_reports_the_revisions(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL", "SMTP_URL"}}
    env.update({"SECRET_KEY": "cli-test-secret-0123456789abcdef", "ENVIRONMENT": "test",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"})
    run = [sys.executable, "-m", "pipeline", "migrate"]
    first = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database at sqlite:///{tmp_path / 'm.db'}: none -> 0001"
    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.stdout.strip().endswith(": 0001 -> 0001") and again.stderr == ""
