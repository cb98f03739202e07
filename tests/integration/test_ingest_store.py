"""store_papers on real databases: a SQLite file and PostgreSQL."""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select

import pipeline.ingest.store as store_module
from pipeline.db.engine import create_schema, make_engine
from pipeline.errors import IngestError
from pipeline.ingest import fetched_at_from_name, parse_day, parse_file, sample_files, store_papers
from pipeline.ingest.records import PaperIn
from pipeline.ingest.store import StoreReport
from pipeline.models import Paper, PaperMetrics
from tests.support.paths import FIXTURES

DAY = date(2025, 3, 21)
AT_0600 = datetime(2025, 3, 21, 6, 0, tzinfo=UTC)
AT_1800 = datetime(2025, 3, 21, 18, 0, tzinfo=UTC)


def papers_of(name: str, day: date = DAY) -> list[PaperIn]:
    return parse_day((FIXTURES / name).read_bytes(), day=day).papers


MORNING = papers_of("hf_daily_papers_2025-03-21_0600Z.json")
EVENING = papers_of("hf_daily_papers_2025-03-21_1800Z.json")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """SQLite file and a fresh PostgreSQL database (see conftest.database_url)."""
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def paper(session: Session, arxiv_id: str) -> Paper:
    return session.exec(select(Paper).where(Paper.arxiv_id == arxiv_id)).one()


def metrics(session: Session, arxiv_id: str) -> list[PaperMetrics]:
    row = paper(session, arxiv_id)
    return list(session.exec(select(PaperMetrics).where(PaperMetrics.paper_id == row.id).order_by(PaperMetrics.fetched_at)))


def test_first_ingest_creates_papers_and_snapshots(session: Session):
    report = store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    assert report == StoreReport(new=45, updated=0, snapshots=45)
    assert count(session, Paper) == 45
    assert count(session, PaperMetrics) == 45

    row = paper(session, "2503.16428")
    assert row.title == "XAttention: Block Sparse Attention with Antidiagonal Scoring"
    assert row.authors == ["Ruyi Xu", "Guangxuan Xiao", "Haofeng Huang", "Junxian Guo", "Song Han"]
    assert row.github_repo == "https://github.com/mit-han-lab/x-attention"
    assert (row.listed_on, row.source) == (DAY, "hf")
    assert row.published_at == datetime(2025, 3, 20, 17, 4, tzinfo=UTC)
    assert row.first_seen_at == AT_0600
    [snap] = metrics(session, "2503.16428")
    assert (snap.fetched_at, snap.upvotes, snap.comments, snap.github_stars) == (AT_0600, 22, 2, 7)


def test_reingesting_the_same_fetch_adds_nothing(session: Session):
    store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    again = store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    assert again == StoreReport(new=0, updated=0, snapshots=0)
    assert (count(session, Paper), count(session, PaperMetrics)) == (45, 45)


def test_the_same_instant_in_another_zone_is_the_same_snapshot(session: Session):
    store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    plus_two = AT_0600.astimezone(timezone(timedelta(hours=2)))
    assert store_papers(session, papers=MORNING, fetched_at=plus_two).snapshots == 0


def test_a_later_snapshot_adds_metrics_and_changes_no_paper(session: Session):
    store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    before = paper(session, "2505.16864").updated_at
    report = store_papers(session, papers=EVENING, fetched_at=AT_1800)
    session.commit()
    assert report == StoreReport(new=0, updated=0, snapshots=45)
    assert (count(session, Paper), count(session, PaperMetrics)) == (45, 90)
    history = [(m.fetched_at, m.upvotes, m.comments, m.github_stars) for m in metrics(session, "2505.16864")]
    assert history == [(AT_0600, 156, 5, 36), (AT_1800, 335, 6, 40)]
    assert paper(session, "2505.16864").updated_at == before


def test_changed_record_updates_content_but_keeps_the_first_sighting(session: Session):
    store_papers(session, papers=MORNING, fetched_at=AT_0600)
    session.commit()
    first = paper(session, "2503.16428")
    first_updated = first.updated_at
    revised = dataclasses.replace(
        MORNING[4],
        title="XAttention v2: Block Sparse Attention",
        authors=("Ruyi Xu", "Song Han"),
        keywords=("sparse attention",),
        summary="Faster long-context inference.",
        listed_on=date(2025, 3, 22),
        source="file",
        submitted_at=datetime(2025, 3, 22, 1, 0, tzinfo=UTC),
    )
    assert revised.arxiv_id == "2503.16428"
    report = store_papers(session, papers=[revised], fetched_at=AT_1800)
    session.commit()
    assert report == StoreReport(new=0, updated=1, snapshots=1)
    row = paper(session, "2503.16428")
    assert row.title == "XAttention v2: Block Sparse Attention"
    assert row.authors == ["Ruyi Xu", "Song Han"]
    assert row.keywords == ["sparse attention"]
    assert row.summary == "Faster long-context inference."
    assert row.listed_on == DAY  # the day it was first listed
    assert row.source == "hf"
    assert row.first_seen_at == AT_0600
    assert row.submitted_at == datetime(2025, 3, 21, 5, 28, tzinfo=UTC)
    assert row.updated_at > first_updated


def test_a_poorer_source_never_erases_what_a_richer_one_gave(session: Session):
    rich = dataclasses.replace(
        MORNING[4], summary="Short summary.", keywords=("sparse",), project_page="https://example.org/x"
    )
    store_papers(session, papers=[rich], fetched_at=AT_0600)
    session.commit()
    poor = dataclasses.replace(
        rich, source="arxiv", summary=None, keywords=(), github_repo=None, project_page=None, github_stars=None,
        upvotes=0, comments=0,
    )
    report = store_papers(session, papers=[poor], fetched_at=AT_1800)
    session.commit()
    assert report.updated == 0
    row = paper(session, "2503.16428")
    assert row.summary == "Short summary."
    assert row.keywords == ["sparse"]
    assert row.github_repo == "https://github.com/mit-han-lab/x-attention"
    assert row.project_page == "https://example.org/x"


def test_a_richer_source_fills_in_what_was_missing(session: Session):
    bare = dataclasses.replace(MORNING[4], github_repo=None, summary=None, source="arxiv")
    store_papers(session, papers=[bare], fetched_at=AT_0600)
    session.commit()
    report = store_papers(session, papers=[MORNING[4]], fetched_at=AT_1800)
    session.commit()
    assert report == StoreReport(new=0, updated=1, snapshots=1)
    assert paper(session, "2503.16428").github_repo == "https://github.com/mit-han-lab/x-attention"


def test_a_repeated_id_in_one_batch_counts_once(session: Session):
    twice = [MORNING[0], dataclasses.replace(MORNING[0], upvotes=999, title="Other")]
    report = store_papers(session, papers=twice, fetched_at=AT_0600)
    session.commit()
    assert report == StoreReport(new=1, updated=0, snapshots=1)
    [snap] = metrics(session, MORNING[0].arxiv_id)
    assert snap.upvotes == MORNING[0].upvotes
    assert paper(session, MORNING[0].arxiv_id).title == MORNING[0].title


def test_existing_papers_are_looked_up_one_query_per_chunk(
    session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    store_papers(session, papers=MORNING[:10], fetched_at=AT_0600)
    session.commit()
    monkeypatch.setattr(store_module, "CHUNK", 20)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        report = store_papers(session, papers=MORNING, fetched_at=AT_1800)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert report == StoreReport(new=35, updated=0, snapshots=45)
    paper_selects = [s for s in statements if s.startswith("select") and "from paper " in s + " "]
    snapshot_selects = [s for s in statements if s.startswith("select") and "from papermetrics" in s]
    assert len(paper_selects) == 3  # 45 ids in chunks of 20
    assert len(snapshot_selects) == 3


def test_store_does_not_commit(session: Session, engine: Engine):
    store_papers(session, papers=MORNING, fetched_at=AT_0600)
    assert count(session, Paper) == 45  # flushed: visible inside the transaction
    session.rollback()
    with Session(engine) as other:
        assert count(other, Paper) == 0
        assert count(other, PaperMetrics) == 0


def test_naive_fetched_at_is_refused(session: Session):
    with pytest.raises(IngestError, match="aware"):
        store_papers(session, papers=MORNING, fetched_at=datetime(2025, 3, 21, 6, 0))


def test_hostile_page_is_stored_as_data(session: Session):
    hostile = papers_of("hf_page_hostile.json")
    report = store_papers(session, papers=hostile, fetched_at=AT_0600)
    session.commit()
    assert report == StoreReport(new=4, updated=0, snapshots=4)
    row = paper(session, "2503.20001")
    assert row.title == "Attention <script>alert(1)</script> Bcc: victim@example.org"  # escaping is render's job
    assert paper(session, "hep-th/9901001").arxiv_id == "hep-th/9901001"


def test_bundled_samples_end_to_end(session: Session):
    totals = StoreReport(new=0, updated=0, snapshots=0)
    for path in sample_files():
        fetched_at = fetched_at_from_name(path)
        assert fetched_at is not None
        report = store_papers(session, papers=parse_file(path).papers, fetched_at=fetched_at)
        session.commit()
        totals = StoreReport(*(a + b for a, b in zip(dataclasses.astuple(totals), dataclasses.astuple(report))))
    assert totals == StoreReport(new=45, updated=0, snapshots=90)
    assert {m.fetched_at for m in session.exec(select(PaperMetrics))} == {AT_0600, AT_1800}
    assert {p.source for p in session.exec(select(Paper))} == {"file"}
