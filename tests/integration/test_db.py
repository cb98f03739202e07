"""The database layer: a schema from an older version is refused with a clear message."""

import pytest
from sqlalchemy import text

from pipeline.db.engine import create_schema, make_engine
from pipeline.errors import ConfigError


def test_an_older_schema_is_refused_with_the_missing_columns_named(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE subscriber (id INTEGER PRIMARY KEY, email VARCHAR(320))"))
    with pytest.raises(ConfigError, match=r"lacks subscriber\.status, subscriber\.uid"):
        create_schema(engine)


def test_sqlite_is_set_up_for_several_writers(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    create_schema(engine)
    create_schema(engine)  # idempotent
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
