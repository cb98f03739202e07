"""Bounce reports: the recorded samples, a report made to measure, a subscriber the issue went to,
and ``papermail bounces`` run in a process of its own."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from pipeline.models import Delivery, DeliveryStatus, Edition, Issue, Subscriber, SubscriberStatus
from tests.support.cli import CLI_SECRET
from tests.support.paths import FIXTURES

BOUNCES = FIXTURES / "bounces"
T0 = dt.datetime(2025, 3, 21, 7, 30, tzinfo=dt.UTC)
DAY = dt.date(2025, 3, 21)
DOMAIN = "papers.example.org"
MAIL_FROM = f"Trending ML Papers <digest@{DOMAIN}>"

POSTFIX = "postfix_5.1.1_user_unknown.eml"
EXIM = "exim_user_unknown.eml"
GMAIL = "gmail_5.2.2_over_quota.eml"
DELAYED = "postfix_4.2.2_delayed.eml"
# The subscribers the sample bounces were sent to: the uid is in each sample's quoted Message-ID.
UIDS = {
    "gone.reader@example.net": "x4Jm2bQv9TzL0aR7cN1pWg",
    "old.address@example.com": "Qm8vT2cXr5LhN0bJk4sYfA",
    "full.inbox@gmail.com": "kP3sW9xZ1qV7mB2nR8tYcQ",
    "busy.reader@example.org": "Hn7dK2pL5wQ9xR3vT6yZbA",
}


def sample(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def returned(final: str, original_id: str | None, *, n: int = 1, status: str = "5.1.1") -> bytes:
    """An RFC 3464 report for ``final``, quoting the headers of the message that bounced (if any)."""
    quoted = (f"--b\nContent-Type: text/rfc822-headers\n\nFrom: {MAIL_FROM}\nTo: {final}\n"
              f"Message-ID: <{original_id}>\nSubject: Trending papers\n\n") if original_id else ""
    return (
        f"From: MAILER-DAEMON@mx.example.net\nTo: bounces@{DOMAIN}\nSubject: Undelivered Mail\n"
        f"Message-ID: <returned-{n}@mx.example.net>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {final}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\n\n{quoted}--b--\n"
    ).encode()


def issue_of(session, day: dt.date = DAY, edition: Edition = Edition.daily) -> Issue:
    """The issue of ``day``, stored bare if there is none yet."""
    issue = session.exec(select(Issue).where(Issue.date == day, Issue.edition == edition)).first()
    if issue is None:
        issue = Issue(date=day, edition=edition, as_of=T0, subject="s", html="h", text="t")
        session.add(issue)
        session.commit()
    return issue


def delivered(session, email: str, status: SubscriberStatus = SubscriberStatus.active, *,
              delivery: DeliveryStatus = DeliveryStatus.sent, edition: Edition = Edition.daily) -> Subscriber:
    """A subscriber the issue of DAY went to (its uid from UIDS when the samples know them)."""
    sub = Subscriber(email=email, status=status, **({"uid": UIDS[email]} if email in UIDS else {}))
    session.add(sub)
    session.commit()
    session.add(Delivery(issue_id=issue_of(session, edition=edition).id, subscriber_id=sub.id, status=delivery))
    session.commit()
    return sub


def run_bounces(cwd: Path, db: str, *args: str, stdin: Path | None = None) -> subprocess.CompletedProcess:
    """``papermail bounces ARGS`` on the database ``db``, reading ``stdin`` (a file; by default nothing).

    Fails the test if the command exits other than 0 or prints a traceback.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "SMTP_URL", "OUTBOX_DIR"}}
    env.update({"DATABASE_URL": db, "ENVIRONMENT": "test", "SECRET_KEY": CLI_SECRET, "MAIL_FROM": MAIL_FROM})
    with open(stdin or os.devnull, "rb") as handle:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "bounces", *args], cwd=cwd, env=env,
                              stdin=handle, capture_output=True, timeout=120)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, f"exit {proc.returncode}:\n{out}\n{err}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
