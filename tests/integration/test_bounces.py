"""Counting bounces, on SQLite and PostgreSQL: only for messages we sent, once each; and the command."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.bounces import BounceCount, clear_bounces, mark_permanent_failure, record_bounces
from pipeline.compose.message_ids import make_message_id
from pipeline.delivery.ledger import open_deliveries
from pipeline.inbound.bounce_reports import parse_bounce
from pipeline.models import Delivery, DeliveryStatus, Edition, Subscriber, SubscriberStatus
from tests.support.bounces import (
    BOUNCES,
    DAY,
    DELAYED,
    DOMAIN,
    EXIM,
    GMAIL,
    POSTFIX,
    T0,
    delivered,
    issue_of,
    returned,
    run_bounces,
    sample,
)
from tests.support.cli import papermail

T1 = T0 + dt.timedelta(days=1)


def another_bounce(raw: bytes, message_id: str) -> bytes:
    """The same failure reported again by a later bounce: only the bounce's own Message-ID differs."""
    head, sep, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?im)^Message-Id: <[^>]+>", b"Message-Id: <" + message_id.encode() + b">", head, count=1)
    return head + sep + body


# --- recording, on SQLite and PostgreSQL ------------------------------------------------------


@pytest.fixture
def session(make_settings, database_url):
    with Session(service.engine(make_settings(database_url=database_url)), expire_on_commit=False) as s:
        yield s


def record(session, raw: bytes, *, now=T0, limit: int = 2) -> list[tuple[str, str]]:
    """The ``(address, text)`` of each line record_bounces returns."""
    lines = record_bounces(session, report=parse_bounce(raw), now=now, bounce_limit=limit, mail_domain=DOMAIN)
    session.commit()
    return [(line.address, line.text) for line in lines]


def reload(session, email: str) -> Subscriber:
    session.expire_all()
    return session.exec(select(Subscriber).where(Subscriber.email == email)).one()


def test_the_same_bounce_recorded_twice_counts_once(session):
    delivered(session, "gone.reader@example.net")
    assert record(session, sample(POSTFIX)) == [
        ("gone.reader@example.net",
         "hard bounce 1/2 (5.1.1 Recipient address rejected: User unknown in virtual mailbox table)")]
    assert record(session, sample(POSTFIX), now=T1) == [("gone.reader@example.net", "already recorded")]
    sub = reload(session, "gone.reader@example.net")
    assert sub.hard_bounces == 1 and sub.status == SubscriberStatus.active
    assert sub.last_bounce_at == T0
    assert sub.last_bounce_reason == "5.1.1 Recipient address rejected: User unknown in virtual mailbox table"


def test_reaching_the_limit_marks_bounced_and_stops_the_mail_but_unsubscribed_stays_unsubscribed(session):
    delivered(session, "gone.reader@example.net")
    delivered(session, "old.address@example.com", SubscriberStatus.unsubscribed)
    delivered(session, "reader@example.org")
    lines: dict[str, str] = {}
    for n in (1, 2):
        for name in (POSTFIX, EXIM):
            lines.update(record(session, another_bounce(sample(name), f"bounce-{n}-{name}@mx.example.net"),
                                now=T0 + dt.timedelta(days=n)))
    assert lines["gone.reader@example.net"].startswith("marked bounced (2/2 hard bounces: 5.1.1")
    assert lines["old.address@example.com"].startswith("hard bounce 2/2, stays unsubscribed")
    gone = reload(session, "gone.reader@example.net")
    assert (gone.status, gone.hard_bounces, gone.last_bounce_at) == (SubscriberStatus.bounced, 2, T0 + dt.timedelta(2))
    unsubscribed = reload(session, "old.address@example.com")
    assert (unsubscribed.status, unsubscribed.hard_bounces) == (SubscriberStatus.unsubscribed, 2)
    # A bounced address is no longer mailed: the next issue's recipients leave it out.
    issue = issue_of(session, dt.date(2025, 3, 23))
    assert open_deliveries(session, issue=issue, now=T1, default_size=10) == 1
    session.commit()
    ids = session.exec(select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id)).all()
    assert ids == [reload(session, "reader@example.org").id]


def test_temporary_failures_are_reported_not_counted(session):
    delivered(session, "busy.reader@example.org")
    assert record(session, sample(DELAYED)) == [("busy.reader@example.org", "temporary failure (4.2.2 Mailbox full)")]
    assert record(session, sample("not_a_bounce_reply.eml")) == []
    busy = reload(session, "busy.reader@example.org")
    assert (busy.hard_bounces, busy.last_bounce_at, busy.status) == (0, None, SubscriberStatus.active)


def test_a_bounce_for_a_message_we_did_not_send_counts_for_nothing(session):
    """Anyone can mail a bounce-shaped message: only one quoting a Message-ID of a delivery we made counts."""
    target = delivered(session, "reader@example.org")
    pending = delivered(session, "waiting@example.org", delivery=DeliveryStatus.pending)
    ours = make_message_id(day=DAY, edition=Edition.daily, uid=target.uid, resend_id=None, domain=DOMAIN)
    forged = {
        "no quoted message": returned("reader@example.org", None, n=1),
        "another sender's message": returned("reader@example.org", f"20250321.{target.uid}@elsewhere.example.com", n=2),
        "a guessed uid": returned("reader@example.org", ours.replace(target.uid, "A" * 22), n=3),
        "another day": returned("reader@example.org", ours.replace("20250321", "20250320"), n=4),
        "the weekly edition, not sent": returned("reader@example.org", ours.replace("20250321", "20250321w"), n=5),
        "never sent yet": returned("waiting@example.org", make_message_id(
            day=DAY, edition=Edition.daily, uid=pending.uid, resend_id=None, domain=DOMAIN), n=6),
    }
    for raw in forged.values():
        [(_, what)] = record(session, raw, limit=1)
        assert what.startswith("not counted: "), what
    assert record(session, forged["no quoted message"].replace(b"returned-1", b"returned-7")) == [
        ("reader@example.org", "not counted: the bounce does not say which message bounced")]
    assert record(session, forged["another sender's message"].replace(b"returned-2", b"returned-8")) == [
        ("reader@example.org", f"not counted: <20250321.{target.uid}@elsewhere.example.com> is not a message we sent")]
    for email in ("reader@example.org", "waiting@example.org"):
        sub = reload(session, email)
        assert (sub.hard_bounces, sub.status) == (0, SubscriberStatus.active)
    # The real one counts.
    [(address, what)] = record(session, returned("reader@example.org", ours, n=9), limit=1)
    assert (address, what) == ("reader@example.org", "marked bounced (1/1 hard bounces: 5.1.1 User unknown)")


def test_a_bounce_from_where_the_mail_was_forwarded_counts_against_the_subscriber(session):
    alice = delivered(session, "alice@example.org")
    weekly = delivered(session, "bob@example.org", edition=Edition.weekly)
    ours = make_message_id(day=DAY, edition=Edition.daily, uid=alice.uid, resend_id=None, domain=DOMAIN)
    assert record(session, returned("alice@old-job.example.com", ours)) == [
        ("alice@example.org", "hard bounce 1/2 (5.1.1 User unknown); it failed at alice@old-job.example.com")]
    # A weekly issue's copy, sent again by a resend, is recognized by its id too.
    resent = make_message_id(day=DAY, edition=Edition.weekly, uid=weekly.uid, resend_id=4, domain=DOMAIN)
    assert record(session, returned("bob@example.org", resent, n=2)) == [
        ("bob@example.org", "hard bounce 1/2 (5.1.1 User unknown)")]
    assert reload(session, "alice@example.org").hard_bounces == 1


def test_a_limit_of_one_bounces_at_the_first_hard_bounce(session):
    delivered(session, "gone.reader@example.net")
    lines = record(session, sample(POSTFIX), limit=1)
    assert lines[0][1].startswith("marked bounced (1/1 hard bounces: 5.1.1")
    assert reload(session, "gone.reader@example.net").status == SubscriberStatus.bounced


def test_a_full_mailbox_is_not_held_against_the_address(session):
    delivered(session, "full.inbox@gmail.com")
    lines = record(session, sample(GMAIL), limit=1)
    assert lines[0][1].startswith("permanent failure not counted") and "5.2.2" in lines[0][1]
    full = reload(session, "full.inbox@gmail.com")
    assert (full.hard_bounces, full.status) == (0, SubscriberStatus.active)


def test_an_operator_clears_bounces(session):
    gone = Subscriber(email="gone.reader@example.net", status=SubscriberStatus.bounced, hard_bounces=3)
    left = Subscriber(email="left@example.org", status=SubscriberStatus.unsubscribed, hard_bounces=2)
    session.add_all([gone, left])
    session.commit()
    assert clear_bounces(session, email=" Gone.Reader@Example.NET ", now=T1) is True
    assert clear_bounces(session, email="left@example.org", now=T1) is True
    assert clear_bounces(session, email="nobody@example.org", now=T1) is False
    session.commit()
    gone = reload(session, "gone.reader@example.net")
    assert (gone.status, gone.hard_bounces, gone.updated_at) == (SubscriberStatus.active, 0, T1)
    left = reload(session, "left@example.org")
    assert (left.status, left.hard_bounces) == (SubscriberStatus.unsubscribed, 0)


def test_a_5xx_at_send_time_counts_with_one_update(session):
    active = Subscriber(email="nobody@example.net", status=SubscriberStatus.active)
    gone = Subscriber(email="gone@example.net", status=SubscriberStatus.unsubscribed)
    session.add_all([active, gone])
    session.commit()
    reply = "550 5.1.1 <nobody@example.net>: Recipient address rejected:\r\n User unknown"
    assert mark_permanent_failure(session, subscriber_id=active.id, reply=reply, now=T0, bounce_limit=2) == \
        BounceCount(1, SubscriberStatus.active)
    session.commit()
    sub = reload(session, "nobody@example.net")
    assert (sub.hard_bounces, sub.last_bounce_at) == (1, T0)
    assert sub.last_bounce_reason == "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown"
    # The dispatcher holds a Connection, not a Session: it works on either.
    with session.get_bind().connect() as conn:
        assert mark_permanent_failure(conn, subscriber_id=active.id, reply=reply, now=T1, bounce_limit=2) == \
            BounceCount(2, SubscriberStatus.bounced)
        assert mark_permanent_failure(conn, subscriber_id=active.id, reply=reply, now=T1, bounce_limit=2) == \
            BounceCount(3, SubscriberStatus.bounced)
        assert mark_permanent_failure(conn, subscriber_id=gone.id, reply=reply, now=T1, bounce_limit=1) == \
            BounceCount(1, SubscriberStatus.unsubscribed)
        assert mark_permanent_failure(conn, subscriber_id=999_999, reply=reply, now=T1, bounce_limit=2) is None
        conn.commit()
    sub = reload(session, "nobody@example.net")
    assert (sub.status, sub.hard_bounces, sub.last_bounce_at) == (SubscriberStatus.bounced, 3, T1)
    assert clear_bounces(session, email="nobody@example.net", now=T1)
    session.commit()
    assert reload(session, "nobody@example.net").status == SubscriberStatus.active


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path, make_settings) -> str:
    url = f"sqlite:///{tmp_path / 'papermail.db'}"
    with Session(service.engine(make_settings(database_url=url)), expire_on_commit=False) as s:
        for email in ("gone.reader@example.net", "old.address@example.com", "busy.reader@example.org"):
            delivered(s, email)
    return url


def test_the_command_reads_a_maildir_counts_once_marks_bounced_and_an_operator_clears_it(tmp_path, cli_db):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, name in enumerate((POSTFIX, EXIM, GMAIL, DELAYED, "not_a_bounce_reply.eml")):
        (maildir / ("new" if i % 2 else "cur") / f"17425404{i}.M{i}P1.mail").write_bytes(sample(name))

    first = run_bounces(tmp_path, cli_db, str(maildir))
    lines = first.stdout.splitlines()
    assert "gone.reader@example.net: hard bounce 1/2 (5.1.1 Recipient address rejected: User unknown in " \
           "virtual mailbox table)" in lines
    assert any(line.startswith("old.address@example.com: hard bounce 1/2 (5.1.1 ") for line in lines)
    assert "busy.reader@example.org: temporary failure (4.2.2 Mailbox full)" in lines
    assert ("full.inbox@gmail.com: not counted: no delivery of ours has the id "
            "<20250321.kP3sW9xZ1qV7mB2nR8tYcQ@papers.example.org>") in lines
    assert lines[-1] == ("5 message(s), 4 bounce(s), 0 unsubscribe request(s): 2 hard bounce(s) counted, "
                         "0 address(es) marked bounced, 1 temporary failure(s), 1 not counted, 0 already recorded, "
                         "0 unsubscribed")

    again = run_bounces(tmp_path, cli_db, str(maildir))
    assert "gone.reader@example.net: already recorded" in again.stdout
    assert "0 hard bounce(s) counted" in again.stdout and "4 already recorded" in again.stdout

    later = tmp_path / "later.eml"
    later.write_bytes(another_bounce(sample(POSTFIX), "20250322070011.4ZK1@mail.papers.example.org"))
    third = run_bounces(tmp_path, cli_db, str(later))
    assert third.stdout.startswith("gone.reader@example.net: marked bounced (2/2 hard bounces: 5.1.1 ")
    env = {"DATABASE_URL": cli_db}
    listed = papermail(tmp_path, "subscribers", "list", "--status", "bounced", env=env).stdout
    assert listed.split("\t")[0] == "gone.reader@example.net" and listed.count("\n") == 1

    cleared = papermail(tmp_path, "subscribers", "clear-bounces", "Gone.Reader@example.net", "who@example.org",
                        env=env, check=False)
    assert cleared.returncode == 0
    assert "Gone.Reader@example.net: bounces cleared" in cleared.stdout
    assert "who@example.org: not a subscriber" in cleared.stderr
    assert papermail(tmp_path, "subscribers", "list", "--status", "bounced", env=env).stdout == ""
    nobody = papermail(tmp_path, "subscribers", "clear-bounces", "who@example.org", env=env, check=False)
    assert nobody.returncode == 1


def test_the_command_reads_one_message_on_stdin_and_an_mbox_and_dry_run_records_nothing(tmp_path, cli_db):
    dry = run_bounces(tmp_path, cli_db, "--dry-run", str(BOUNCES / "two_bounces.mbox"))
    assert dry.stdout.splitlines()[0].startswith("gone.reader@example.net: hard bounce 1/2 (5.1.1 Recipient address")
    assert dry.stdout.rstrip().endswith("2 hard bounce(s) counted, 0 address(es) marked bounced, 0 temporary "
                                        "failure(s), 0 not counted, 0 already recorded, 0 unsubscribed; "
                                        "dry run, nothing recorded")

    piped = run_bounces(tmp_path, cli_db, stdin=BOUNCES / POSTFIX)
    assert piped.stdout.startswith("gone.reader@example.net: hard bounce 1/2 (5.1.1 ")  # the dry run counted nothing
    dash = run_bounces(tmp_path, cli_db, "-", stdin=BOUNCES / DELAYED)
    assert "busy.reader@example.org: temporary failure (4.2.2 Mailbox full)" in dash.stdout

    mbox = run_bounces(tmp_path, cli_db, str(BOUNCES / "two_bounces.mbox"))
    assert "gone.reader@example.net: already recorded" in mbox.stdout  # the same bounce came on stdin
    assert any(line.startswith("old.address@example.com: hard bounce 1/2") for line in mbox.stdout.splitlines())

    empty = run_bounces(tmp_path, cli_db)  # nothing on stdin
    assert "0 message(s)" in empty.stdout


def test_the_command_explains_a_missing_path_in_one_line(tmp_path, cli_db):
    env = {"DATABASE_URL": cli_db}
    proc = papermail(tmp_path, "bounces", str(tmp_path / "nowhere"), env=env, check=False)
    assert proc.returncode == 1 and proc.stderr == f"error: {tmp_path / 'nowhere'} does not exist\n"


def test_the_command_tallies_each_line_by_its_kind_not_by_how_its_text_begins(tmp_path, monkeypatch):
    """The summary counts each line's Outcome: a text that reads like another kind's is tallied as what it is."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.inbound.handler import Handled
    from pipeline.inbound.outcomes import Line, Outcome
    from pipeline.settings import get_settings

    lines = [Line("a@example.org", Outcome.not_counted, "hard bounce 1/2, so it reads, but it was not counted"),
             Line("b@example.org", Outcome.marked_bounced, "temporary failure at first, marked bounced now"),
             Line("c@example.org", Outcome.unsubscribed, "unsubscribe request carried out")]
    monkeypatch.setattr(service, "handle_inbound", lambda cfg, raw, *, record: Handled("bounce", lines))
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("SECRET_KEY", "bounces-test-secret-0123456789abcdef")
    (tmp_path / "one.eml").write_bytes(sample(POSTFIX))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["bounces", "one.eml"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "a@example.org: hard bounce 1/2, so it reads, but it was not counted",
        "b@example.org: temporary failure at first, marked bounced now",
        "c@example.org: unsubscribe request carried out",
        "1 message(s), 1 bounce(s), 0 unsubscribe request(s): 1 hard bounce(s) counted, 1 address(es) marked "
        "bounced, 0 temporary failure(s), 1 not counted, 0 already recorded, 1 unsubscribed",
    ]
