"""The pipeline honours what subscribers chose: pause, weekly on a weekday, number of papers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscribers import add_subscriber
from pipeline.models import Edition, Frequency, Issue, Selection, Subscriber
from tests.support.cli import papermail

DAY = dt.date(2025, 3, 21)  # a Friday: its issues go out on Saturday (weekday 5)


@pytest.fixture
def cfg(make_settings, database_url, smtp_server):
    _, url = smtp_server
    return make_settings(database_url=database_url, smtp_url=url, digest_size=10)


def subscriber(cfg, email, **prefs):
    with Session(service.engine(cfg)) as session:
        sub, _ = add_subscriber(session, email=email, confirmed=True)
        for key, value in prefs.items():
            setattr(sub, key, value)
        session.add(sub)
        session.commit()


def send(cfg, edition=Edition.daily):
    service.build(cfg, day=DAY, edition=edition)
    issue_id, batches = service.start_sending(cfg, day=DAY, edition=edition)
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    service.finish(cfg, issue_id=issue_id)
    return issue_id


def papers_in(message) -> int:
    text = message.get_body(("plain",)).get_content()
    return text.count("https://huggingface.co/papers/")


def test_each_subscriber_gets_the_number_of_papers_they_chose(cfg, smtp_server):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    subscriber(cfg, "default@example.org")
    subscriber(cfg, "five@example.org", digest_size=5)
    subscriber(cfg, "many@example.org", digest_size=25)
    subscriber(cfg, "five-too@example.org", digest_size=5)
    issue_id = send(cfg)
    got = {m.rcpt[0]: papers_in(m.message) for m in handler.messages}
    assert got == {"default@example.org": 10, "five@example.org": 5, "many@example.org": 25,
                   "five-too@example.org": 5}
    with Session(service.engine(cfg)) as session:
        # One selection per size, shared by the readers who chose it, never one per reader.
        rows = session.exec(select(Selection).where(Selection.issue_id == issue_id)).all()
    assert sorted((len(row.picks), row.readers, row.personal) for row in rows) == [
        (5, 2, False), (10, 1, False), (25, 1, False)]


def test_paused_and_weekly_subscribers_get_no_daily_issue(cfg, smtp_server):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    subscriber(cfg, "daily@example.org")
    subscriber(cfg, "paused@example.org", paused=True)
    subscriber(cfg, "weekly@example.org", frequency=Frequency.weekly, weekday=5)
    send(cfg)
    assert [m.rcpt[0] for m in handler.messages] == ["daily@example.org"]


def test_pausing_after_the_snapshot_still_skips_at_send_time(cfg, smtp_server):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    subscriber(cfg, "a@example.org")
    subscriber(cfg, "b@example.org")
    service.build(cfg, day=DAY)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == "b@example.org")).one()
        sub.paused = True
        session.add(sub)
        session.commit()
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    assert [m.rcpt[0] for m in handler.messages] == ["a@example.org"]


def test_weekly_edition_goes_to_weekly_readers_of_that_weekday_only(cfg, smtp_server):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    subscriber(cfg, "daily@example.org")
    subscriber(cfg, "saturday@example.org", frequency=Frequency.weekly, weekday=5, digest_size=5)
    subscriber(cfg, "monday@example.org", frequency=Frequency.weekly, weekday=0)
    assert service.editions_due(cfg, day=DAY) == [Edition.daily, Edition.weekly]
    assert service.editions_due(cfg, day=DAY + dt.timedelta(days=1)) == [Edition.daily]
    issue_id = send(cfg, Edition.weekly)
    (received,) = handler.messages
    assert received.rcpt == ["saturday@example.org"]
    assert "week to 21 Mar 2025" in received.message["Subject"]
    assert papers_in(received.message) == 5
    assert received.message["List-Archive"] == "<https://papers.example.org/issues/2025-03-21/weekly>"
    with Session(service.engine(cfg)) as session:
        issue = session.get(Issue, issue_id)
        assert issue.edition == Edition.weekly and issue.date == DAY


def test_the_daily_run_sends_both_editions_when_due(tmp_path, smtp_server, database_url):
    handler, url = smtp_server
    env = {"DATABASE_URL": database_url, "SMTP_URL": url}
    papermail(tmp_path, "subscribers", "add", "daily@example.org", env=env)
    cfg_env = dict(database_url=database_url)
    from pipeline.settings import Settings

    cfg = Settings(_env_file=None, **cfg_env)
    subscriber(cfg, "weekly@example.org", frequency=Frequency.weekly, weekday=5)
    out = papermail(tmp_path, "run", "--source", "sample", env=env).stdout
    assert "daily issue 2025-03-21 built" in out and "weekly issue 2025-03-21 built" in out
    assert sorted(m.rcpt[0] for m in handler.messages) == ["daily@example.org", "weekly@example.org"]
    papermail(tmp_path, "run", "--source", "sample", env=env)
    assert len(handler.messages) == 2
