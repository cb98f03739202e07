"""One run of the daily job sends readers with different interests and votes different digests: filtered
by their interests, ordered by their votes, each card saying why it is there; a reader whom nothing matches
gets nothing unless they asked for the trending list anyway. Sent through a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.interests import Interest, Kind, Mode, dump, match
from pipeline.audience.subscribers import add_subscriber
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Delivery, DeliveryStatus, Issue, Selection, Subscriber
from pipeline.web.app import create_app
from tests.support.cli import papermail
from tests.support.sending import DAY
from tests.support.spam import spam_report

PAPER = re.compile(r"https://huggingface\.co/papers/([0-9.]+)")


@pytest.fixture
def cfg(make_settings, database_url, smtp_server):
    _, url = smtp_server
    return make_settings(database_url=database_url, smtp_url=url, digest_size=10)


def reader(cfg, email_address, *, interests=(), **prefs) -> str:
    with Session(service.engine(cfg)) as session:
        sub, _ = add_subscriber(session, email=email_address, confirmed=True)
        sub.topics = dump(Interest.parse(*i) for i in interests)
        for key, value in prefs.items():
            setattr(sub, key, value)
        session.add(sub)
        session.commit()
        return sub.uid


def send(cfg) -> int:
    service.build(cfg, day=DAY)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    service.finish(cfg, issue_id=issue_id)
    return issue_id


def received(handler) -> dict[str, email.message.EmailMessage]:
    return {m.rcpt[0]: email.message_from_bytes(m.data, policy=email.policy.default) for m in handler.messages}


def papers(message) -> list[str]:
    text = message.get_body(("plain",)).get_content()
    return list(dict.fromkeys(PAPER.findall(text)))


def items(cfg) -> dict[str, dict]:
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
        return {item["arxiv_id"]: item for item in issue.items}


def test_readers_get_their_own_filtered_ordered_and_explained_digests_from_one_run(cfg, smtp_server, tmp_path):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    reader(cfg, "everything@example.org")
    reader(cfg, "video@example.org", interests=[("keyword", "video")])
    reader(cfg, "no-video@example.org", interests=[("keyword", "video", "exclude")])
    reader(cfg, "video-too@example.org", interests=[("keyword", "video")])  # the same interest: the same copy
    reader(cfg, "nothing@example.org", interests=[("keyword", "xylophone quartet")])
    reader(cfg, "anyway@example.org", interests=[("keyword", "xylophone quartet")], send_anyway=True)
    issue_id = send(cfg)

    got = received(handler)
    pool = items(cfg)
    ranked = list(pool)
    video = Interest(Kind.keyword, "video", Mode.include)
    assert set(got) == {"everything@example.org", "video@example.org", "no-video@example.org",
                        "video-too@example.org", "anyway@example.org"}
    assert papers(got["everything@example.org"]) == ranked[:10]

    mine = papers(got["video@example.org"])
    matching = [aid for aid in ranked if match(pool[aid], [video])]
    assert 3 <= len(mine) and mine == matching[:10]  # only theirs, in the trend's order (no votes yet)
    assert papers(got["video-too@example.org"]) == mine
    text = " ".join(got["video@example.org"].get_body(("plain",)).get_content().split())
    assert "Why it's here: matches video; " + pool[mine[0]]["why"] in text
    html = got["video@example.org"].get_body(("html",)).get_content().replace("&#39;", "'")
    assert "Why it's here:</span> matches video; " in html and "Also trending" not in html

    theirs = papers(got["no-video@example.org"])
    assert len(theirs) == 10 and not any(match(pool[aid], [video]) for aid in theirs)

    anyway = got["anyway@example.org"]
    assert papers(anyway) == ranked[:10] and "ALSO TRENDING" in anyway.get_body(("plain",)).get_content()
    assert "Also trending" in anyway.get_body(("html",)).get_content()
    assert spam_report(anyway.as_bytes())[0] <= 1.0

    with Session(service.engine(cfg)) as session:
        nothing = session.exec(select(Delivery).join(Subscriber).where(
            Subscriber.email == "nothing@example.org")).one()
        assert nothing.status is DeliveryStatus.skipped and "nothing matched" in (nothing.last_error or "")
        rows = session.exec(select(Selection).where(Selection.issue_id == issue_id)).all()
    # The top 10; the same under "Also trending"; no-video's; and the two video readers' one copy.
    assert sorted((row.readers, row.personal) for row in rows) == [(1, False), (1, True), (1, True), (2, True)]
    progress = service.progress(cfg, day=DAY)
    assert (progress.selections, progress.personal_selections) == (4, 3)
    status = papermail(tmp_path, "status", "--date", DAY.isoformat(), env={"DATABASE_URL": cfg.database_url})
    assert "4 distinct selections of papers (3 personal)" in status.stdout


def test_a_vote_through_the_link_in_the_mail_changes_the_next_digest(cfg, smtp_server):
    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    uid = reader(cfg, "voter@example.org", mix=100)
    reader(cfg, "plain@example.org", mix=100)
    ranked = list(items_after_build(cfg))
    liked = ranked[15]  # not in anyone's top ten by trend
    with TestClient(create_app(cfg)) as site:
        token = Signer(cfg.secret_key, Purpose.feedback).sign(uid)
        assert site.post(f"/f/{token}", data={"paper": liked, "vote": "more"}).status_code == 200
        assert site.post(f"/f/{token}", data={"paper": ranked[0], "vote": "less"}).status_code == 200
    send(cfg)
    got = received(handler)
    assert papers(got["plain@example.org"]) == ranked[:10]
    voted = papers(got["voter@example.org"])
    assert liked in voted and ranked[0] not in voted and len(voted) == 10
    text = " ".join(got["voter@example.org"].get_body(("plain",)).get_content().split())
    assert "Why it's here: close to what you liked: " in text  # the words their model liked, as written
    assert "Why it's here" not in " ".join(got["plain@example.org"].get_body(("plain",)).get_content().split())


def items_after_build(cfg) -> dict[str, dict]:
    service.build(cfg, day=DAY)
    return items(cfg)


def test_a_readers_model_is_kept_and_trained_again_only_when_their_votes_change(cfg, monkeypatch):
    from sqlalchemy import text

    from pipeline.delivery import selections
    from pipeline.models import ReaderModel, Vote, utcnow

    service.ingest(cfg, day=DAY, source="sample")
    uid = reader(cfg, "voter@example.org", mix=100, interests=[("keyword", "video")])
    ranked = list(items_after_build(cfg))
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.uid == uid)).one()
        session.add(Vote(subscriber_id=sub.id, arxiv_id=ranked[20], value=1))
        session.commit()
    trained = []
    real_train = selections.train
    monkeypatch.setattr(selections, "train", lambda found: trained.append(len(found)) or real_train(found))

    def assign_again():
        with Session(service.engine(cfg)) as session:
            issue = session.exec(select(Issue)).one()
            session.execute(text("UPDATE delivery SET selection_id = NULL, status = 'pending'"))
            selections.assign(session, issue=issue, now=utcnow())
            session.commit()
            picks = session.exec(select(Selection.picks).join(Delivery, Delivery.selection_id == Selection.id)).one()
            return [p["index"] for p in picks]

    service.start_sending(cfg, day=DAY)
    assert trained == [2]  # one vote and one keyword interest
    with Session(service.engine(cfg)) as session:
        (kept,) = session.exec(select(ReaderModel)).all()
        first = session.exec(select(Selection.picks).join(Delivery, Delivery.selection_id == Selection.id)).one()
    assert [ref for ref, _ in kept.basis] == [ranked[20], "keyword:include:video"]
    assert assign_again() == [p["index"] for p in first] and trained == [2]  # kept: not trained again
    with Session(service.engine(cfg)) as session:
        session.add(Vote(subscriber_id=kept.subscriber_id, arxiv_id=ranked[0], value=-1))
        session.commit()
    assign_again()
    assert trained == [2, 3]


def store_earlier_day(cfg, day) -> None:
    """The sample's papers once more, as another day's list under other ids and titles."""
    import dataclasses
    import datetime as dt

    from pipeline.db.engine import session_scope
    from pipeline.ingest import files
    from pipeline.ingest.store import store_papers

    back = DAY - day
    for snapshot in files.sample_files():
        parsed = files.parse_file(snapshot, day=DAY)
        papers = [dataclasses.replace(p, arxiv_id=f"2503.9{n:04d}", title=f"Earlier: {p.title}", listed_on=day,
                                      submitted_at=p.submitted_at - back if p.submitted_at else None)
                  for n, p in enumerate(parsed.papers)]
        fetched = (files.fetched_at_from_name(snapshot) or dt.datetime(2025, 3, 21, 18, tzinfo=dt.UTC)) - back
        with session_scope(service.engine(cfg)) as session:
            store_papers(session, papers=papers, fetched_at=fetched)


def send_day(cfg, day) -> None:
    service.build(cfg, day=day)
    issue_id, batches = service.start_sending(cfg, day=day)
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    service.finish(cfg, issue_id=issue_id)


def test_a_reader_back_from_a_pause_gets_the_best_of_the_day_they_missed(cfg, smtp_server, monkeypatch):
    import datetime as dt

    from pipeline.delivery import selections
    from pipeline.models import Paper, utcnow

    handler, _ = smtp_server
    before = DAY - dt.timedelta(days=1)
    store_earlier_day(cfg, before)
    service.ingest(cfg, day=DAY, source="sample")
    reader(cfg, "stayed@example.org")
    back = reader(cfg, "back@example.org", paused=True)
    send_day(cfg, before)
    assert [m.rcpt[0] for m in handler.messages] == ["stayed@example.org"]
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.uid == back)).one()
        sub.paused = False
        session.add(sub)
        session.commit()
    with Session(service.engine(cfg)) as session:  # one of yesterday's top papers is withdrawn since
        gone_id = session.exec(select(Issue).where(Issue.date == before)).one().items[2]["arxiv_id"]
        gone = session.exec(select(Paper).where(Paper.arxiv_id == gone_id)).one()
        gone.withdrawn_at = utcnow()
        session.add(gone)
        session.commit()
    handler.messages.clear()
    chosen_one_by_one = []
    real_select = selections.personal.select
    monkeypatch.setattr(selections.personal, "select",
                        lambda *a, **k: chosen_one_by_one.append(k["among"]) or real_select(*a, **k))
    send_day(cfg, DAY)
    assert len(chosen_one_by_one) == 1  # only the reader back from the pause: the other gets the shared top ten

    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue).where(Issue.date == DAY)).one()
        earlier = session.exec(select(Issue).where(Issue.date == before)).one()
    assert [item["arxiv_id"] for item in issue.catch_up] == [
        item["arxiv_id"] for item in earlier.items[:10] if item["arxiv_id"] != gone_id]  # never a withdrawn one
    assert {item["carried_from"] for item in issue.catch_up} == {before.isoformat()}
    got = received(handler)
    stayed, caught_up = papers(got["stayed@example.org"]), papers(got["back@example.org"])
    assert stayed == [item["arxiv_id"] for item in issue.items[:10]]  # got yesterday's: nothing again
    carried = {item["arxiv_id"] for item in issue.catch_up}
    assert 0 < len(set(caught_up) & carried) < 10 and len(caught_up) == 10
    pool = {item["arxiv_id"]: item for item in issue.pool}
    assert [pool[a]["score"] for a in caught_up] == sorted((pool[a]["score"] for a in caught_up), reverse=True)
    text = " ".join(got["back@example.org"].get_body(("plain",)).get_content().split())
    assert "Earlier: " in text and f"Listed {before:%-d %b %Y}" in text


def test_papers_sent_in_an_earlier_issue_are_not_sent_again(cfg, smtp_server):
    import datetime as dt

    from pipeline.models import Edition, Frequency

    handler, _ = smtp_server
    service.ingest(cfg, day=DAY, source="sample")
    uid = reader(cfg, "switcher@example.org")
    send(cfg)
    daily = papers(received(handler)["switcher@example.org"])
    with Session(service.engine(cfg)) as session:  # now weekly, on the day this week's issue goes out
        sub = session.exec(select(Subscriber).where(Subscriber.uid == uid)).one()
        sub.frequency, sub.weekday = Frequency.weekly, (DAY + dt.timedelta(days=1)).weekday()
        session.add(sub)
        session.commit()
    handler.messages.clear()
    service.build(cfg, day=DAY, edition=Edition.weekly)
    issue_id, batches = service.start_sending(cfg, day=DAY, edition=Edition.weekly)
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    weekly = papers(received(handler)["switcher@example.org"])
    with Session(service.engine(cfg)) as session:
        week = session.exec(select(Issue).where(Issue.edition == Edition.weekly)).one()
    ranked = [item["arxiv_id"] for item in week.items]
    assert len(weekly) == 10 and not set(weekly) & set(daily)  # the week's best they have not had yet
    assert weekly == [aid for aid in ranked if aid not in daily][:10]
