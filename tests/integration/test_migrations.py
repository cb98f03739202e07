"""Alembic migrations, run by the application itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlmodel import Session, SQLModel, select

from pipeline.db import migrate
from pipeline.db.engine import create_schema, make_engine
from pipeline.errors import ConfigError
from pipeline.models import Subscriber, SubscriberStatus
from tests.support.paths import ROOT

migrate.register_tables()
TABLES = {t.name for t in SQLModel.metadata.sorted_tables}
HEAD = migrate.head()
LATER_COLUMNS = {  # columns later revisions added
    "paper": {"organization", "thumbnail_url", "thumbnail", "withdrawn_at", "categories"},
    "subscriber": {"mix", "send_anyway"},
    "issue": {"blocks", "catch_up"},
    "delivery": {"selection_id"},
}


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
    assert migrate.current(engine) == HEAD and HEAD is not None
    assert tables(engine) == TABLES | {"alembic_version"}
    assert migrate.check(engine) == []


def test_a_second_upgrade_changes_nothing(engine):
    create_schema(engine)
    with Session(engine) as session:
        session.add(Subscriber(email="ada@example.org"))
        session.commit()
    create_schema(engine)
    migrate.upgrade(engine)
    assert migrate.current(engine) == HEAD
    with Session(engine) as session:
        assert session.exec(select(Subscriber.email)).all() == ["ada@example.org"]


def test_check_names_what_differs(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE paper ADD COLUMN extra INTEGER"))
    assert migrate.check(engine) == ["remove_column paper.extra"]


def _copy(column: Column) -> Column:
    """A column for another table, with its foreign keys (which Column._copy leaves out)."""
    copy = column._copy()
    if not copy.foreign_keys:
        for key in column.foreign_keys:
            copy.append_foreign_key(ForeignKey(key.target_fullname))
    return copy


@pytest.mark.parametrize("with_bounces", [False, True], ids=["models", "models+bounces"])
def test_a_database_made_by_create_all_before_migrations_is_stamped_and_then_works(engine, with_bounces):
    later = {"suppression", "image", "vote", "selection", "readermodel"} | (set() if with_bounces else {"processedbounce"})
    then = MetaData()  # the tables as they were, without what later revisions added
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in later:
            kept = [_copy(c) for c in table.columns if c.name not in LATER_COLUMNS.get(table.name, ())]
            uniques = [UniqueConstraint(*[c.name for c in u.columns]) for u in list(table.constraints)
                       if isinstance(u, UniqueConstraint)]
            copy = Table(table.name, then, *kept, *uniques)
            for index in table.indexes:
                if index.name not in {i.name for i in copy.indexes} and all(c.name in copy.c for c in index.columns):
                    Index(index.name, *[copy.c[c.name] for c in index.columns], unique=index.unique)
    Table("issuevariant", then, Column("id", Integer, primary_key=True),  # a table a later revision dropped
          Column("issue_id", Integer, ForeignKey("issue.id"), nullable=False, index=True),
          Column("size", Integer, nullable=False), Column("subject", String(300), nullable=False),
          Column("html", Text, nullable=False), Column("text", Text, nullable=False), UniqueConstraint("issue_id", "size"))
    then.create_all(engine)  # the old way
    with engine.begin() as conn:  # which knew nothing of indexes and columns added by later revisions
        conn.execute(text("DROP INDEX ix_delivery_issue_sent_at"))
        conn.execute(text("ALTER TABLE subscriber DROP COLUMN requested_at"))
        conn.execute(text("ALTER TABLE subscriber DROP COLUMN feed_generation"))
        conn.execute(text("INSERT INTO subscriber (email, status, uid, created_at, updated_at, paused, frequency, "
                          "weekday, topics, hard_bounces) VALUES ('old@example.org', 'pending', 'old', "
                          "'2025-01-01', '2025-01-01', false, 'daily', 0, '[]', 0)"))
    assert migrate.current(engine) is None
    create_schema(engine)
    assert migrate.current(engine) == HEAD
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
    assert all(migrate.current(e) == HEAD for e in engines)
    for e in engines:
        e.dispose()


def test_two_processes_creating_the_schema_at_once_both_succeed(database_url):
    code = "import sys; from pipeline.db.engine import create_schema, make_engine; create_schema(make_engine(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, database_url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    engine = make_engine(database_url)
    assert migrate.current(engine) == HEAD and migrate.check(engine) == []
    engine.dispose()


def test_downgrading_to_base_drops_every_table(engine):
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
    assert first.stdout.strip() == f"database at sqlite:///{tmp_path / 'm.db'}: none -> {HEAD}"
    again = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.stdout.strip().endswith(f": {HEAD} -> {HEAD}") and again.stderr == ""


def test_a_batch_migration_can_copy_a_table_that_others_reference(engine):
    """SQLite's batch mode recreates the table: the migration turns foreign keys off around it, then back on."""
    import datetime as dt

    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from pipeline.models import Delivery, Issue

    create_schema(engine)
    with Session(engine) as session:
        sub = Subscriber(email="ada@example.org")
        issue = Issue(date=dt.date(2025, 3, 21), as_of=dt.datetime.now(dt.UTC), subject="s", html="h", text="t")
        session.add_all([sub, issue])
        session.commit()
        session.add(Delivery(issue_id=issue.id, subscriber_id=sub.id))
        session.commit()
    with migrate._migrating(engine) as conn:
        op = Operations(MigrationContext.configure(conn, opts={"render_as_batch": True}))
        with op.batch_alter_table("subscriber", recreate="always" if conn.dialect.name == "sqlite" else "auto") as b:
            b.alter_column("last_bounce_reason", type_=sa.String(600), existing_type=sa.String(500))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM delivery")).scalar() == 1
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_database_from_a_newer_papermail_is_refused_in_one_line(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match=r"cannot migrate the database .*'9999'"):
        create_schema(engine)


def test_the_suppression_list_is_filled_from_the_subscribers_left_by_earlier_versions(engine):
    """Revision 0004: every unsubscribed or bounced address gets its record, with the same hash the
    application computes; a former subscriber left "pending" by an earlier version is unsubscribed again."""
    from pipeline.audience.suppression import address_hash
    from pipeline.models import Suppression, SuppressionReason

    migrate.upgrade(engine)
    migrate.downgrade(engine, "0003")
    assert "suppression" not in tables(engine) and migrate.current(engine) == "0003"
    with engine.begin() as conn:
        for n, (email, status, left) in enumerate([
            ("left@example.org", "unsubscribed", "2025-01-02 03:04:05"),
            ("failed@example.org", "bounced", None),
            ("asked-again@example.org", "pending", "2025-01-02 03:04:05"),
            ("reader@example.org", "active", None),
            ("new@example.org", "pending", None),
        ]):
            conn.execute(text(
                "INSERT INTO subscriber (email, status, uid, created_at, updated_at, unsubscribed_at, paused, "
                "frequency, weekday, topics, hard_bounces) VALUES (:e, :s, :u, '2025-01-01', '2025-01-01', :l, "
                "false, 'daily', 0, '[]', 0)"), {"e": email, "s": status, "u": f"uid{n}", "l": left})
    migrate.upgrade(engine)
    assert migrate.current(engine) == HEAD and migrate.check(engine) == []
    with Session(engine) as session:
        records = {r.address_hash: r.reason for r in session.exec(select(Suppression))}
        statuses = dict(session.exec(select(Subscriber.email, Subscriber.status)).all())
    assert records == {address_hash("left@example.org"): SuppressionReason.unsubscribed,
                       address_hash("failed@example.org"): SuppressionReason.bounced,
                       address_hash("asked-again@example.org"): SuppressionReason.unsubscribed}
    assert statuses["asked-again@example.org"] == SubscriberStatus.unsubscribed
    assert statuses["new@example.org"] == SubscriberStatus.pending
