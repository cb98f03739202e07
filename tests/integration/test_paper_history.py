"""A paper's engagement history from any way it arrives: a saved day without a fetch time, a late backfill,
snapshots on a cadence or a folder of past fetches; one paper per arXiv id; withdrawn papers never featured."""

from __future__ import annotations

import copy
import datetime as dt
import json

import httpx
import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.errors import IngestError
from pipeline.models import Issue, Paper, PaperMetrics
from tests.support.cli import papermail
from tests.support.papers_api import day_items, papers_api
from tests.support.paths import FIXTURES
from tests.support.sending import DAY

MORNING, EVENING = (day_items(FIXTURES / f"hf_daily_papers_2025-03-21_{t}Z.json") for t in ("0600", "1800"))


def with_upvotes(items: list[dict], votes: dict[int, int]) -> list[dict]:
    items = copy.deepcopy(items)
    for index, count in votes.items():
        items[index]["paper"]["upvotes"] = count
    return items


def write(path, items) -> str:
    path.write_text(json.dumps(items))
    return str(path)


def top_ids(cfg, n: int) -> list[str]:
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
        return [item["arxiv_id"] for item in issue.items[:n]]


def test_a_saved_day_without_a_fetch_time_ranks_its_most_upvoted_papers_first(tmp_path):
    """`papermail run --date D --source file:…` on a file named with the day only: its one snapshot is taken
    "now", long after the day's scoring moment, and is used, marked, rather than scoring everyone 0."""
    hot = {40: 500, 41: 500, 42: 500, 43: 500, 44: 500}  # the ones sorted last by arXiv id would otherwise lead
    items = with_upvotes(EVENING, hot)
    day_file = write(tmp_path / "something_2025-03-21.json", items)
    papermail(tmp_path, "init")
    papermail(tmp_path, "run", "--date", str(DAY), "--source", f"file:{day_file}")
    cfg = service_settings(tmp_path)
    expected = {items[i]["paper"]["id"] for i in hot}
    assert set(top_ids(cfg, 5)) == expected
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
        assert all(item["parts"]["measured"] == "later" for item in issue.items)
        assert issue.items[0]["upvotes"] == 500 and issue.items[0]["score"] > 0
    explained = papermail(tmp_path, "rank", "--date", str(DAY), "--explain", "--limit", "5").stdout
    assert explained.count("* ") >= 1 and "measured from the first one taken after it" in explained
    assert all(f"{i}*" in explained for i in expected)


def service_settings(tmp_path):
    from pipeline.settings import Settings

    return Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'var' / 'papermail.db'}",  # type: ignore[call-arg]
                    outbox_dir=tmp_path / "var" / "outbox")


def test_a_backfill_fetched_days_later_ranks_by_what_it_found(cfg):
    items = with_upvotes(EVENING, {30: 900})
    client, _ = papers_api(items)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 4, 2, 12, tzinfo=dt.UTC))
    service.build(cfg, day=DAY, now=dt.datetime(2025, 4, 2, 13, tzinfo=dt.UTC))
    assert top_ids(cfg, 1) == [items[30]["paper"]["id"]]


def test_a_paper_first_seen_days_later_is_measured_then_and_the_others_on_time(cfg):
    late_id = EVENING[0]["paper"]["id"]
    on_time = [item for item in EVENING if item["paper"]["id"] != late_id]
    client, _ = papers_api(on_time)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 21, 18, tzinfo=dt.UTC))
    client, _ = papers_api(with_upvotes(EVENING, {0: 1000}))
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 25, 18, tzinfo=dt.UTC))
    service.build(cfg, day=DAY, now=dt.datetime(2025, 3, 26, tzinfo=dt.UTC))
    with Session(service.engine(cfg)) as session:
        items = {i["arxiv_id"]: i for i in session.exec(select(Issue)).one().items}
    assert items[late_id]["parts"]["measured"] == "later" and items[late_id]["upvotes"] == 1000
    others = [i for k, i in items.items() if k != late_id]
    assert others and all(i["parts"]["measured"] == "on time" for i in others)
    by_id = {i["paper"]["id"]: i["paper"]["upvotes"] for i in on_time}
    assert all(i["upvotes"] == by_id[i["arxiv_id"]] for i in others)  # their on-time figures, not the later ones


def test_a_folder_of_past_fetches_ingests_as_a_history_oldest_first(cfg, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    write(folder / "hf_daily_papers_2025-03-21_1800Z.json", EVENING)
    write(folder / "hf_daily_papers_2025-03-21_0600Z.json", MORNING)
    next_day = [item for item in copy.deepcopy(EVENING[:3])]
    write(folder / "hf_daily_papers_2025-03-22_0900Z.json", next_day)
    (folder / "notes.txt").write_text("not a snapshot")
    summaries = list(service.ingest_history(cfg, folder))
    assert [(s.day, s.fetches) for s in summaries] == [(DAY, 2), (dt.date(2025, 3, 22), 1)]
    with Session(service.engine(cfg)) as session:
        fetched = sorted({m.fetched_at.hour for m in session.exec(select(PaperMetrics))})
        relisted = session.exec(select(Paper).where(Paper.arxiv_id == next_day[0]["paper"]["id"])).one()
        history = session.exec(select(PaperMetrics).where(PaperMetrics.paper_id == relisted.id)).all()
    assert fetched == [6, 9, 18]
    assert relisted.listed_on == DAY and len(history) == 3  # listed on two days: one paper, one history
    issue, _ = service.build(cfg, day=DAY, now=dt.datetime(2025, 3, 22, 7, tzinfo=dt.UTC))
    assert {item["parts"]["measured"] for item in issue.items} == {"on time"}


def test_a_folder_through_the_command_line(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    write(folder / "hf_daily_papers_2025-03-21_0600Z.json", MORNING)
    write(folder / "hf_daily_papers_2025-03-21_1800Z.json", EVENING)
    done = papermail(tmp_path, "ingest", "--source", f"file:{folder}")
    assert f"ingested 1 days of snapshots (2 fetches) from {folder}: {len(EVENING)} new papers" in done.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = papermail(tmp_path, "ingest", "--source", f"file:{empty}", check=False)
    assert failed.returncode != 0 and "holds no snapshot files" in failed.stderr
    assert failed.stderr.strip().count("\n") == 0 and "Traceback" not in failed.stderr


def test_an_empty_or_missing_folder_is_one_clear_error(cfg, tmp_path):
    with pytest.raises(IngestError, match="holds no snapshot files"):
        list(service.ingest_history(cfg, tmp_path))
    with pytest.raises(IngestError, match="holds no snapshot of 2025-03-21"):
        write(tmp_path / "hf_daily_papers_2025-03-22_0600Z.json", MORNING)
        service.ingest(cfg, day=DAY, source=f"file:{tmp_path}")


def test_versions_of_an_arxiv_id_are_one_paper(cfg):
    client, _ = papers_api(MORNING)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 21, 6, tzinfo=dt.UTC))
    versioned = copy.deepcopy(EVENING)
    target = versioned[0]["paper"]["id"]
    versioned[0]["paper"]["id"] = f"{target}v2"
    client, _ = papers_api(versioned)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 21, 18, tzinfo=dt.UTC))
    with Session(service.engine(cfg)) as session:
        rows = session.exec(select(Paper).where(Paper.arxiv_id.startswith(target))).all()  # type: ignore[attr-defined]
        assert [r.arxiv_id for r in rows] == [target]
        assert len(session.exec(select(PaperMetrics).where(PaperMetrics.paper_id == rows[0].id)).all()) == 2


def test_a_withdrawn_paper_is_never_featured(cfg):
    client, _ = papers_api(MORNING)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 21, 6, tzinfo=dt.UTC))
    withdrawn = with_upvotes(EVENING, {0: 5000})
    withdrawn[0]["paper"]["withdrawnAt"] = "2025-03-21T15:00:00.000Z"
    gone = withdrawn[0]["paper"]["id"]
    client, _ = papers_api(withdrawn)
    summary = service.ingest(cfg, day=DAY, source="hf", client=client,
                             now=dt.datetime(2025, 3, 21, 18, tzinfo=dt.UTC))
    assert summary.withdrawn == 1
    client, _ = papers_api(EVENING)  # a later list without the mark does not bring it back
    service.ingest(cfg, day=DAY, source="hf", client=client, now=dt.datetime(2025, 3, 21, 20, tzinfo=dt.UTC))
    issue, _ = service.build(cfg, day=DAY, now=dt.datetime(2025, 3, 22, 7, tzinfo=dt.UTC))
    assert gone not in {item["arxiv_id"] for item in issue.items}
    with Session(service.engine(cfg)) as session:
        paper = session.exec(select(Paper).where(Paper.arxiv_id == gone)).one()
    assert paper.withdrawn_at == dt.datetime(2025, 3, 21, 15, tzinfo=dt.UTC)


def test_a_snapshot_fetches_the_recent_lists(cfg):
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/daily_papers":
            return httpx.Response(404)
        asked.append(request.url.params["date"])
        if request.url.params["date"] == "2025-03-22":
            return httpx.Response(400, json={"error": "Invalid date"})  # today's list is not open yet
        return httpx.Response(200, json=EVENING if request.url.params["p"] == "0" else [])

    client = httpx.Client(transport=httpx.MockTransport(handler))
    now = dt.datetime(2025, 3, 22, 3, tzinfo=dt.UTC)
    summaries = service.snapshot(cfg, now=now, client=client)
    assert [(s.day, s.snapshots) for s in summaries] == [(DAY, len(EVENING))] + [
        (DAY - dt.timedelta(days=n), 0) for n in (1, 2)]  # older lists answer (here with nothing new)
    assert asked[0] == "2025-03-22" and {"2025-03-21", "2025-03-20", "2025-03-19"} <= set(asked)


def test_beat_takes_snapshots_on_the_cadence(make_settings):
    from workers.app import make_app

    assert make_app(make_settings()).conf.beat_schedule["snapshot"]["schedule"] == 3 * 3600
    assert make_app(make_settings(snapshot_every_hours=1.5)).conf.beat_schedule["snapshot"]["schedule"] == 5400
    assert "snapshot" not in make_app(make_settings(snapshot_every_hours=0)).conf.beat_schedule


def test_the_daily_run_ranks_from_what_it_fetched_at_the_send_hour(cfg):
    """Beat starts the run at SEND_HOUR:00 and it fetches the list seconds later: that snapshot is the send
    hour's, on time, not a later one."""
    client, _ = papers_api(EVENING)
    fetched = dt.datetime(2025, 3, 22, cfg.send_hour, 0, 4, tzinfo=dt.UTC)
    service.ingest(cfg, day=DAY, source="hf", client=client, now=fetched)
    issue, _ = service.build(cfg, day=DAY, now=fetched + dt.timedelta(seconds=3))
    assert {item["parts"]["measured"] for item in issue.items} == {"on time"}
    assert issue.items[0]["score"] > 0 and issue.as_of == fetched + dt.timedelta(seconds=3)
    rebuilt_later = service.rank_request(cfg, day=DAY, now=dt.datetime(2025, 4, 1, tzinfo=dt.UTC)).as_of
    assert fetched < rebuilt_later < fetched + dt.timedelta(minutes=15)
