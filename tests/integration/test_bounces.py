"""Bounces: real bounce samples parsed, hard bounces counted on SQLite and PostgreSQL, the CLI end to end."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from pipeline import jobs
from pipeline.bounces import (
    EMPTY,
    BounceCount,
    BounceReport,
    ProcessedBounce,
    clear_bounces,
    mark_permanent_failure,
    parse_bounce,
    read_messages,
    record_bounces,
)
from pipeline.dispatch import open_deliveries
from pipeline.models import Delivery, Issue, Subscriber, SubscriberStatus
from tests.conftest import FIXTURES
from tests.integration.test_cli import papermail

BOUNCES = FIXTURES / "bounces"
T0 = dt.datetime(2025, 3, 21, 7, 30, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)

POSTFIX = "postfix_5.1.1_user_unknown.eml"
EXIM = "exim_user_unknown.eml"
GMAIL = "gmail_5.2.2_over_quota.eml"
DELAYED = "postfix_4.2.2_delayed.eml"


def sample(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def another_bounce(raw: bytes, message_id: str) -> bytes:
    """The same failure reported again by a later bounce (a later issue): only the bounce's own Message-ID differs."""
    head, sep, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?im)^Message-Id: <[^>]+>", b"Message-Id: <" + message_id.encode() + b">", head, count=1)
    return head + sep + body


def ready_engine(settings_):
    engine = jobs.engine(settings_)
    # The migrations do not create this table yet (a 0002 revision is owed): make it here meanwhile.
    ProcessedBounce.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    return engine


# --- parsing the samples ----------------------------------------------------------------------


def test_a_postfix_dsn_for_an_unknown_user_is_a_permanent_failure_with_its_status_and_our_message_id():
    report = parse_bounce(sample(POSTFIX))
    assert report.permanent == {"gone.reader@example.net"}  # Final-Recipient was Gone.Reader@Example.net
    assert report.temporary == frozenset()
    assert report.reason == "5.1.1 Recipient address rejected: User unknown in virtual mailbox table"
    assert report.original_message_id == "20250321.x4Jm2bQv9TzL0aR7cN1pWg@papers.example.org"
    assert report.bounce_id == "20250321070014.4ZJ8Q51mN2z9sWb@mail.papers.example.org"


def test_an_exim_plain_text_bounce_is_read_with_the_smtp_reply_it_quotes():
    report = parse_bounce(sample(EXIM))
    assert report.permanent == {"old.address@example.com"}
    assert report.temporary == frozenset()
    assert report.reason == "5.1.1 Recipient address rejected: User unknown in local recipient table"
    assert report.original_message_id == "20250321.Qm8vT2cXr5LhN0bJk4sYfA@papers.example.org"
    assert report.bounce_id == "E1tvX8h-00031k-0P@relay.example.com"


def test_a_gmail_over_quota_dsn_is_permanent_by_its_5_2_2_status():
    report = parse_bounce(sample(GMAIL))
    assert report.permanent == {"full.inbox@gmail.com"}
    assert report.temporary == frozenset()
    assert report.reason.startswith("5.2.2 The email account that you tried to reach is over quota and inactive.")
    assert "552-5.2.2" not in report.reason  # the continuation-line prefixes are gone
    assert report.original_message_id == "20250321.kP3sW9xZ1qV7mB2nR8tYcQ@papers.example.org"


def test_a_delayed_dsn_is_a_temporary_failure():
    report = parse_bounce(sample(DELAYED))
    assert report.temporary == {"busy.reader@example.org"}
    assert report.permanent == frozenset()
    assert report.reason == "4.2.2 Mailbox full"
    assert report.original_message_id == "20250321.Hn7dK2pL5wQ9xR3vT6yZbA@papers.example.org"


@pytest.mark.parametrize("name", ["not_a_bounce_reply.eml", "not_a_bounce_out_of_office.eml"])
def test_a_reply_or_an_auto_reply_is_not_a_bounce(name):
    report = parse_bounce(sample(name))
    assert report == EMPTY and not report.is_bounce


DSN = """\
From: MAILER-DAEMON@mx.example.org
To: bounces@papers.example.org
Subject: Delivery Status Notification
Message-ID: <dsn-{n}@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Delivery report.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

{blocks}
--b--
"""


def dsn(blocks: str, n: int = 1) -> bytes:
    return DSN.format(blocks=blocks, n=n).encode()


def test_the_status_code_decides_even_when_the_action_is_failed():
    # An MTA that gave up retrying says "failed" with a 4.x.x code: the address itself may be fine.
    raw = dsn("Final-Recipient: rfc822; slow@example.org\nAction: failed\nStatus: 4.4.7\n"
              "Diagnostic-Code: X-Postfix; delivery temporarily suspended: connection timed out\n")
    report = parse_bounce(raw)
    assert report.temporary == {"slow@example.org"} and report.permanent == frozenset()
    assert report.reason == "4.4.7 delivery temporarily suspended: connection timed out"


def test_several_recipients_each_with_their_own_outcome_and_reason():
    raw = dsn(
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; full@example.org\nAction: delayed\nStatus: 4.2.2\n\n"
        "Final-Recipient: rfc822; fine@example.org\nAction: relayed\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; alias@example.org\nOriginal-Recipient: rfc822; Sent.To@Example.org\n"
        "Action: failed\nStatus: 5.2.1\n"
    )
    report = parse_bounce(raw)
    assert report.permanent == {"gone@example.org", "sent.to@example.org"}  # the address we sent to
    assert report.temporary == {"full@example.org"}
    # No diagnostic: RFC 3463's words for the code.
    assert report.reason_for("gone@example.org") == "5.1.1 bad destination mailbox address"
    assert report.reason_for("full@example.org") == "4.2.2 mailbox full"
    assert report.reason_for("sent.to@example.org") == "5.2.1 mailbox disabled"
    assert "gone@example.org: 5.1.1" in report.reason


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe garbage \x80", b"From: x\n\n", b"Content-Type: multipart/report; boundary=x\n\n--x\n",
     b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction: failed\n",
     b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n"
     b"Content-Transfer-Encoding: base64\n\n!!!notbase64\n--x--\n"],
)
def test_garbage_gives_an_empty_report(raw):
    assert parse_bounce(raw) == EMPTY


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_no_input_makes_parse_bounce_raise(raw):
    assert isinstance(parse_bounce(raw), BounceReport)


@pytest.mark.parametrize("name", [POSTFIX, EXIM, GMAIL, DELAYED])
def test_truncated_and_mangled_samples_never_raise(name):
    raw = sample(name)
    for cut in range(0, len(raw), 97):
        assert isinstance(parse_bounce(raw[:cut]), BounceReport)
        assert isinstance(parse_bounce(raw[:cut] + b"\xff\x00" + raw[cut + 40:]), BounceReport)


# --- reading mailboxes ------------------------------------------------------------------------


def test_an_mbox_yields_each_message():
    reports = [parse_bounce(raw) for raw in read_messages(BOUNCES / "two_bounces.mbox")]
    assert [set(r.permanent) for r in reports] == [{"gone.reader@example.net"}, {"old.address@example.com"}]


def test_a_single_eml_a_folder_of_eml_files_and_a_maildir(tmp_path):
    assert list(read_messages(BOUNCES / EXIM)) == [sample(EXIM)]
    folder = tmp_path / "saved"
    folder.mkdir()
    for name in (POSTFIX, EXIM):
        shutil.copy(BOUNCES / name, folder / name)
    (folder / "notes.txt").write_text("not mail")
    assert sorted(read_messages(folder)) == sorted([sample(POSTFIX), sample(EXIM)])
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1742540414.M1P2.mail").write_bytes(sample(POSTFIX))
    (maildir / "cur" / "1742540463.M2P3.mail:2,S").write_bytes(sample(GMAIL))
    (maildir / "tmp" / "1742540500.M3P4.mail").write_bytes(sample(EXIM))  # still being written: not read
    assert list(read_messages(maildir)) == [sample(POSTFIX), sample(GMAIL)]


# --- recording, on SQLite and PostgreSQL ------------------------------------------------------


@pytest.fixture
def session(make_settings, database_url):
    with Session(ready_engine(make_settings(database_url=database_url)), expire_on_commit=False) as s:
        yield s


def subscriber(session, email: str, status: SubscriberStatus = SubscriberStatus.active) -> Subscriber:
    sub = Subscriber(email=email, status=status)
    session.add(sub)
    session.commit()
    return sub


def reload(session, email: str) -> Subscriber:
    session.expire_all()
    return session.exec(select(Subscriber).where(Subscriber.email == email)).one()


def test_the_same_bounce_recorded_twice_counts_once(session):
    subscriber(session, "gone.reader@example.net")
    report = parse_bounce(sample(POSTFIX))
    first = record_bounces(session, report=report, now=T0, bounce_limit=2)
    session.commit()
    assert first == [("gone.reader@example.net",
                      "hard bounce 1/2 (5.1.1 Recipient address rejected: User unknown in virtual mailbox table)")]
    again = record_bounces(session, report=parse_bounce(sample(POSTFIX)), now=T1, bounce_limit=2)
    session.commit()
    assert again == [("gone.reader@example.net", "already recorded")]
    sub = reload(session, "gone.reader@example.net")
    assert sub.hard_bounces == 1 and sub.status == SubscriberStatus.active
    assert sub.last_bounce_at == T0
    assert sub.last_bounce_reason == "5.1.1 Recipient address rejected: User unknown in virtual mailbox table"


def test_reaching_the_limit_marks_bounced_and_stops_the_mail_but_unsubscribed_stays_unsubscribed(session):
    subscriber(session, "gone.reader@example.net")
    subscriber(session, "old.address@example.com", SubscriberStatus.unsubscribed)
    subscriber(session, "reader@example.org")
    lines: dict[str, str] = {}
    for n in (1, 2):
        for name in (POSTFIX, EXIM):
            report = parse_bounce(another_bounce(sample(name), f"bounce-{n}-{name}@mx.example.net"))
            lines.update(record_bounces(session, report=report, now=T0 + dt.timedelta(days=n), bounce_limit=2))
            session.commit()
    assert lines["gone.reader@example.net"].startswith("marked bounced (2/2 hard bounces: 5.1.1")
    assert lines["old.address@example.com"].startswith("hard bounce 2/2, stays unsubscribed")
    gone = reload(session, "gone.reader@example.net")
    assert (gone.status, gone.hard_bounces, gone.last_bounce_at) == (SubscriberStatus.bounced, 2, T0 + dt.timedelta(2))
    unsubscribed = reload(session, "old.address@example.com")
    assert (unsubscribed.status, unsubscribed.hard_bounces) == (SubscriberStatus.unsubscribed, 2)
    # A bounced address is no longer mailed: the next issue's recipients leave it out.
    issue = Issue(date=dt.date(2025, 3, 23), as_of=T1, subject="s", html="h", text="t")
    session.add(issue)
    session.commit()
    assert open_deliveries(session, issue=issue, now=T1, default_size=10) == 1
    session.commit()
    ids = session.exec(select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id)).all()
    assert ids == [reload(session, "reader@example.org").id]


def test_temporary_failures_and_unknown_addresses_are_reported_not_counted(session):
    subscriber(session, "busy.reader@example.org")
    assert record_bounces(session, report=parse_bounce(sample(DELAYED)), now=T0, bounce_limit=2) == [
        ("busy.reader@example.org", "temporary failure (4.2.2 Mailbox full)")
    ]
    assert record_bounces(session, report=parse_bounce(sample(GMAIL)), now=T0, bounce_limit=2) == [
        ("full.inbox@gmail.com", "not a subscriber")
    ]
    assert record_bounces(session, report=parse_bounce(sample("not_a_bounce_reply.eml")), now=T0, bounce_limit=2) == []
    session.commit()
    busy = reload(session, "busy.reader@example.org")
    assert (busy.hard_bounces, busy.last_bounce_at, busy.status) == (0, None, SubscriberStatus.active)


def test_a_limit_of_one_bounces_at_the_first_hard_bounce(session):
    subscriber(session, "gone.reader@example.net")
    lines = record_bounces(session, report=parse_bounce(sample(POSTFIX)), now=T0, bounce_limit=1)
    session.commit()
    assert lines[0][1].startswith("marked bounced (1/1 hard bounces: 5.1.1")
    assert reload(session, "gone.reader@example.net").status == SubscriberStatus.bounced


def test_a_full_mailbox_is_not_held_against_the_address(session):
    subscriber(session, "full.inbox@gmail.com")
    lines = record_bounces(session, report=parse_bounce(sample(GMAIL)), now=T0, bounce_limit=1)
    session.commit()
    assert lines[0][1].startswith("permanent failure not counted") and "5.2.2" in lines[0][1]
    full = reload(session, "full.inbox@gmail.com")
    assert (full.hard_bounces, full.status) == (0, SubscriberStatus.active)


def test_an_operator_clears_bounces(session):
    subscriber(session, "gone.reader@example.net", SubscriberStatus.bounced).hard_bounces = 3
    unsubscribed = subscriber(session, "left@example.org", SubscriberStatus.unsubscribed)
    unsubscribed.hard_bounces = 2
    session.add(unsubscribed)
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
    active = subscriber(session, "nobody@example.net")
    gone = subscriber(session, "gone@example.net", SubscriberStatus.unsubscribed)
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
    # ...and the bounce message that follows for the same address adds to the same count.
    assert clear_bounces(session, email="nobody@example.net", now=T1)
    session.commit()
    assert reload(session, "nobody@example.net").status == SubscriberStatus.active


# --- the command ------------------------------------------------------------------------------


def run_bounces(cwd: Path, db: str, *args: str, stdin: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "SMTP_URL", "OUTBOX_DIR"}}
    env.update({"DATABASE_URL": db, "ENVIRONMENT": "test", "SECRET_KEY": "cli-test-secret-0123456789abcdef"})
    with open(stdin or os.devnull, "rb") as handle:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "bounces", *args], cwd=cwd, env=env,
                              stdin=handle, capture_output=True, timeout=120)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, f"exit {proc.returncode}:\n{out}\n{err}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def cli_db(tmp_path, make_settings) -> str:
    url = f"sqlite:///{tmp_path / 'papermail.db'}"
    ready_engine(make_settings(database_url=url))
    env = {"DATABASE_URL": url}
    papermail(tmp_path, "subscribers", "add", "gone.reader@example.net", "old.address@example.com",
              "busy.reader@example.org", env=env)
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
    assert "full.inbox@gmail.com: not a subscriber" in lines
    assert lines[-1] == ("5 message(s), 4 bounce(s): 2 hard bounce(s) counted, 0 address(es) marked bounced, "
                         "1 temporary failure(s), 1 not subscribed, 0 already recorded")

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
    assert dry.stdout.splitlines()[0] == ("gone.reader@example.net: permanent failure (5.1.1 Recipient address "
                                          "rejected: User unknown in virtual mailbox table)")
    assert "2 message(s), 2 bounce(s): 2 permanent and 0 temporary failure(s); dry run, nothing recorded" in dry.stdout

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
