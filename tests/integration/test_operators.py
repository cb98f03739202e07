"""What operators do: pause and resume, resend to an explicit scope, and what pauses an issue by itself."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from pipeline import service
from pipeline.errors import DeliveryError, IssueError
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Resend,
    ResendScope,
    Subscriber,
    SubscriberStatus,
)
from tests.support.cli import papermail
from tests.support.sending import DAY, counts, prepare, send_all, subscribe
from tests.support.smtp import SMTPScript


@pytest.fixture
def cfg(make_settings, database_url, smtp_server):
    _, url = smtp_server
    return make_settings(database_url=database_url, smtp_url=url, send_batch_size=100, claim_size=3)


def received(handler):
    return sorted(r for m in handler.messages for r in m.rcpt)


def issue_row(cfg):
    with Session(service.engine(cfg)) as session:
        return session.exec(select(Issue).where(Issue.date == DAY)).one()


def set_status(cfg, email, status):
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == email)).one()
        sub.status = status
        session.add(sub)
        session.commit()


def test_pause_stops_a_send_and_resume_finishes_it(cfg, smtp_server):
    handler, _ = smtp_server
    emails = prepare(cfg, n=6)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    assert service.pause(cfg, day=DAY, reason="checking the template") is True
    for a, b in batches:
        result = service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
        assert result.paused == "checking the template" and result.sent == 0
    assert handler.messages == [] and counts(cfg, issue_id) == {"pending": 6}
    assert service.pause(cfg, day=DAY, reason="again") is False  # already paused
    assert service.resume(cfg, day=DAY) is True
    send_all(cfg)
    assert received(handler) == emails
    assert issue_row(cfg).status == IssueStatus.finished


def test_a_burst_of_failures_pauses_the_issue_instead_of_burning_the_list(make_settings, database_url, smtp_server,
                                                                        smtp_script):
    handler, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url, claim_size=4, failure_burst_limit=3)
    emails = prepare(cfg, n=10)
    for email in emails:
        smtp_script.rcpt_replies[email] = "554 5.7.1 sending IP on a blocklist"
    issue_id, _ = send_all(cfg)
    issue = issue_row(cfg)
    assert issue.status == IssueStatus.paused and "3 sends failed in a row" in issue.paused_reason
    assert "5.7.1" in issue.paused_reason
    assert counts(cfg, issue_id) == {"failed": 3, "pending": 7}  # the rest were left untouched


@pytest.mark.parametrize("smtp_script", [SMTPScript(refuse_login=True)], ids=["bad-credentials"])
def test_refused_credentials_pause_the_issue_at_once(make_settings, database_url, smtp_server, smtp_script):
    _, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url.replace("smtp://", "smtp://user:wrong@"))
    prepare(cfg, n=3)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    with pytest.raises(DeliveryError, match="login .* refused: 535"):
        service.send_range(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][1])
    issue = issue_row(cfg)
    assert issue.status == IssueStatus.paused and "535" in issue.paused_reason
    assert counts(cfg, issue_id) == {"pending": 3}


def test_uncertain_deliveries_are_a_scope_of_their_own_and_not_failed(cfg, smtp_server, smtp_script):
    """A drop after the final "." makes a delivery uncertain: it has probably arrived, so --failed leaves it be."""
    handler, _ = smtp_server
    emails = prepare(cfg, n=4)
    smtp_script.rcpt_replies[emails[0]] = "550 5.1.1 no such user"
    smtp_script.drop_after_data.add(emails[1])
    issue_id, _ = send_all(cfg)
    assert counts(cfg, issue_id) == {"sent": 2, "failed": 1, "uncertain": 1}
    smtp_script.rcpt_replies.clear()

    _, failed = service.resend(cfg, day=DAY, scope=ResendScope.failed, reason="x", requested_by="test", dry_run=True)
    _, uncertain = service.resend(cfg, day=DAY, scope=ResendScope.uncertain, reason="x", requested_by="test",
                                  dry_run=True)
    assert failed.addresses == [emails[0]] and uncertain.addresses == [emails[1]]

    record, _ = service.resend(cfg, day=DAY, scope=ResendScope.uncertain, reason="asked", requested_by="test")
    assert record.scope is ResendScope.uncertain and record.deliveries == 1
    send_all(cfg)
    assert len(handler.to(emails[1])) == 2  # the first copy had arrived; this one is the second, by choice


def test_the_cli_warns_before_resending_to_the_uncertain(cfg, tmp_path):
    prepare(cfg, n=1)
    env = {"DATABASE_URL": cfg.database_url, "SMTP_URL": cfg.smtp_url or ""}
    service.start_sending(cfg, day=DAY)
    done = papermail(tmp_path, "resend", "--date", DAY.isoformat(), "--uncertain", "--dry-run", env=env)
    assert "may get the issue twice" in done.stderr and "dry run: 0 would receive" in done.stderr
    both = papermail(tmp_path, "resend", "--date", DAY.isoformat(), "--uncertain", "--failed", "--reason", "x",
                     env=env, check=False)
    assert both.returncode == 2 and "--uncertain" in both.stderr


def test_resend_to_the_failed_only_and_never_to_the_unsubscribed(cfg, smtp_server, smtp_script):
    handler, _ = smtp_server
    emails = prepare(cfg, n=5)
    smtp_script.rcpt_replies[emails[1]] = "550 5.1.1 no such user"
    smtp_script.rcpt_replies[emails[2]] = "550 5.1.1 no such user"
    send_all(cfg)
    smtp_script.rcpt_replies.clear()
    set_status(cfg, emails[2], SubscriberStatus.unsubscribed)

    record, plan = service.resend(cfg, day=DAY, scope=ResendScope.failed, reason="mailbox fixed", requested_by="test",
                               dry_run=True)
    assert record is None and plan.addresses == [emails[1]]
    assert plan.skipped == [(emails[2], "subscriber is unsubscribed")]
    assert len(handler.messages) == 3  # a dry run sends nothing

    record, _ = service.resend(cfg, day=DAY, scope=ResendScope.failed, reason="mailbox fixed", requested_by="test")
    assert record.deliveries == 1 and record.reason == "mailbox fixed" and record.scope == ResendScope.failed
    issue_id, _ = send_all(cfg)
    assert received(handler) == sorted([emails[0], emails[1], emails[3], emails[4]])
    # Submitting it again queues nothing: the targets are no longer failed.
    again, plan = service.resend(cfg, day=DAY, scope=ResendScope.failed, reason="mailbox fixed", requested_by="test")
    assert again is None and plan.targets == []
    with Session(service.engine(cfg)) as session:
        assert len(session.exec(select(Resend)).all()) == 1
        resent = session.exec(select(Delivery).where(Delivery.resend_id == record.id)).all()
    assert [d.status for d in resent] == [DeliveryStatus.sent]


def test_resend_to_named_addresses_including_one_who_joined_later(cfg, smtp_server):
    handler, _ = smtp_server
    emails = prepare(cfg, n=3)
    send_all(cfg)
    subscribe(cfg, ["late@example.org"])
    record, plan = service.resend(cfg, day=DAY, scope=ResendScope.to, addresses=[emails[0], "Late@example.org",
                               "ghost@example.org"], reason="asked for a copy", requested_by="test")
    assert sorted(plan.addresses) == sorted([emails[0], "late@example.org"])
    assert plan.skipped == [("ghost@example.org", "not a subscriber")]
    send_all(cfg)
    got = [r for m in handler.messages for r in m.rcpt]
    assert got.count(emails[0]) == 2 and got.count("late@example.org") == 1 and len(got) == 5
    # The resent copy has an id of its own (a client that drops ids it has seen would hide it),
    # which still names the issue and the subscriber, and the ledger keeps the newest.
    first, again = (m.message["Message-ID"].strip("<>") for m in handler.to(emails[0]))
    assert again == first.replace("@", f".r{record.id}@") and first != again
    with Session(service.engine(cfg)) as session:
        stored = session.exec(select(Delivery.message_id).join(Subscriber).where(Subscriber.email == emails[0])).one()
    assert stored == again


def test_resend_needs_a_reason_and_an_issue_already_sent(cfg):
    prepare(cfg, n=2)
    with pytest.raises(IssueError, match="has not been sent yet"):
        service.resend(cfg, day=DAY, scope=ResendScope.all, reason="x", requested_by="test")
    service.start_sending(cfg, day=DAY)
    with pytest.raises(IssueError, match="say why"):
        service.resend(cfg, day=DAY, scope=ResendScope.all, reason=" ", requested_by="test")


def test_resend_all_and_the_cli_guards(tmp_path, smtp_server, database_url):
    handler, url = smtp_server
    env = {"DATABASE_URL": database_url, "SMTP_URL": url}
    papermail(tmp_path, "subscribers", "add", "a@example.org", "b@example.org", env=env)
    papermail(tmp_path, "run", "--source", "sample", env=env)
    refused = papermail(tmp_path, "resend", "--date", "2025-03-21", "--all", "--reason", "oops", env=env, check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr
    both = papermail(tmp_path, "resend", "--date", "2025-03-21", "--failed", "--all", env=env, check=False)
    assert both.returncode == 2 and "exactly one" in both.stderr
    dry = papermail(tmp_path, "resend", "--date", "2025-03-21", "--all", "--dry-run", env=env)
    assert dry.stdout.split() == ["a@example.org", "b@example.org"] and len(handler.messages) == 2
    done = papermail(tmp_path, "resend", "--date", "2025-03-21", "--all", "--force", "--reason", "template fix",
                     env=env)
    assert "2 deliveries queued again" in done.stdout and len(handler.messages) == 4
    assert "finished" in done.stdout


def test_status_shows_rate_and_time_left(cfg, smtp_server):
    prepare(cfg, n=4)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    service.send_range(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][0] + 2)
    started = issue_row(cfg).send_started_at
    info = service.progress(cfg, day=DAY, now=started + dt.timedelta(seconds=30))
    assert info.open == 2 and info.counts["sent"] == 2
    # Sending began 30 s ago: the rate is over those 30 s, not over a whole minute.
    assert info.rate == pytest.approx(2 / 30) and info.eta == dt.timedelta(seconds=30)
    later = service.progress(cfg, day=DAY, now=started + dt.timedelta(seconds=50))
    assert later.rate == pytest.approx(2 / 50)


def test_a_stale_scheduled_run_is_skipped_but_an_operator_run_is_not(make_settings):
    cfg = make_settings(send_hour=7, stale_after_hours=12)
    day = dt.date(2025, 3, 21)
    due = dt.datetime(2025, 3, 22, 7, tzinfo=dt.UTC)
    assert not service.is_stale(cfg, day=day, now=due + dt.timedelta(hours=11))
    assert service.is_stale(cfg, day=day, now=due + dt.timedelta(hours=13))
    from workers import tasks

    assert tasks.run.run(day="2025-03-21", source="sample", scheduled=True) == "stale"


def test_the_reconciler_sends_retries_when_due_and_closes_the_issue(cfg, smtp_server, smtp_script):
    handler, _ = smtp_server
    emails = prepare(cfg, n=4)
    smtp_script.rcpt_replies[emails[1]] = "451 4.3.0 try later"
    issue_id, _ = send_all(cfg)
    smtp_script.rcpt_replies.clear()
    assert service.reconcile(cfg) == []  # the retry is not due yet: nothing to plan
    with Session(service.engine(cfg)) as session:  # ...an hour later, it is
        for d in session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.retry)):
            d.next_attempt_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            session.add(d)
        session.commit()
    plans = service.reconcile(cfg)
    assert [issue for issue, _ in plans] == [issue_id]
    for _, batches in plans:
        for a, b in batches:
            service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    assert received(handler) == emails
    assert service.reconcile(cfg) == [] and issue_row(cfg).status == IssueStatus.finished


def test_the_reconciler_requeues_pending_rows_only_when_nobody_is_sending_them(cfg, smtp_server):
    handler, _ = smtp_server
    emails = prepare(cfg, n=5)
    issue_id, batches = service.start_sending(cfg, day=DAY)  # batches queued, then lost with the broker's data
    assert service.reconcile(cfg) == []  # just started: its own batches are on their way
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=cfg.lease_seconds + 1)
    assert service.reconcile(cfg, now=later) == [(issue_id, batches)]  # nobody touched it for a lease: queue again
    # A sender working through the list (its ledger writes are recent) is left to it.
    service.send_range(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][0] + 2)
    assert service.reconcile(cfg) == []
    for _, plan in service.reconcile(cfg, now=later + dt.timedelta(seconds=1)):
        for a, b in plan:
            service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    assert received(handler) == emails
    assert service.reconcile(cfg, now=later) == [] and issue_row(cfg).status == IssueStatus.finished


def test_rows_a_dead_sender_held_are_requeued_as_soon_as_its_lease_ran_out(cfg, smtp_server):
    """Another sender is busy on the issue, so its pending rows are left to it; but the rows of a claim whose
    lease ran out have nobody coming for them (that task is unacknowledged in the broker for an hour)."""
    handler, _ = smtp_server
    emails = prepare(cfg, n=6)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    now = dt.datetime.now(dt.UTC)
    with Session(service.engine(cfg)) as session:
        rows = session.exec(select(Delivery).where(Delivery.issue_id == issue_id).order_by(Delivery.id)).all()
        for row, (claim, lease) in zip(rows[:3], [("dead", now - dt.timedelta(seconds=1))] * 2
                                       + [("alive", now + dt.timedelta(seconds=60))]):
            row.status, row.claim, row.lease_until, row.updated_at = DeliveryStatus.sending, claim, lease, now
            session.add(row)
        session.commit()
    plans = service.reconcile(cfg, now=now)  # a live claim and fresh writes: the issue is under way
    assert plans and plans[0][0] == issue_id
    with Session(service.engine(cfg)) as session:
        states = [d.status for d in session.exec(select(Delivery).where(Delivery.issue_id == issue_id)
                                                 .order_by(Delivery.id))]
    assert states[:3] == [DeliveryStatus.uncertain, DeliveryStatus.pending, DeliveryStatus.sending]
    for _, plan in plans:
        for a, b in plan:
            service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    # Everyone but the one that may have been in flight and the one the live sender holds has it now.
    assert received(handler) == sorted(emails[1:2] + emails[3:])


@pytest.mark.parametrize(
    ("reply", "counted"),
    [("550 5.1.1 no such user", True), ("554 5.7.1 sending IP on a blocklist", False),
     ("552 5.2.2 mailbox full", False), ("550 user unknown", True)],
)
def test_hard_bounces_at_send_time_mark_the_address_after_the_limit(make_settings, database_url, smtp_server,
                                                                    smtp_script, reply, counted):
    _, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url, bounce_limit=2)
    emails = prepare(cfg, n=2)
    smtp_script.rcpt_replies[emails[0]] = reply
    send_all(cfg)
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == emails[0])).one()
        assert sub.hard_bounces == (1 if counted else 0) and sub.status == SubscriberStatus.active
    # The same refusal on a resend reaches the limit: the address is not mailed again.
    service.resend(cfg, day=DAY, scope=ResendScope.failed, reason="retry after the fix", requested_by="test")
    send_all(cfg)
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == emails[0])).one()
        expected = SubscriberStatus.bounced if counted else SubscriberStatus.active
        assert sub.status == expected and (not counted or "5" in sub.last_bounce_reason)


def test_status_lists_the_recorded_resends(tmp_path, smtp_server, database_url):
    _, url = smtp_server
    env = {"DATABASE_URL": database_url, "SMTP_URL": url}
    papermail(tmp_path, "subscribers", "add", "a@example.org", env=env)
    papermail(tmp_path, "run", "--source", "sample", env=env)
    papermail(tmp_path, "resend", "--date", "2025-03-21", "--to", "a@example.org", "--reason", "lost it", env=env)
    status = papermail(tmp_path, "status", "--date", "2025-03-21", env=env).stdout
    assert "resend #1" in status and "by cli: to, 1 deliveries — lost it" in status


@pytest.mark.parametrize("smtp_script", [SMTPScript(delay=0.05)], ids=["slow-smtp"])
def test_status_watch_follows_a_running_send_until_it_finishes(tmp_path, make_settings, database_url, smtp_server,
                                                               smtp_script):
    import threading

    handler, url = smtp_server
    cfg = make_settings(database_url=database_url, smtp_url=url, secret_key="cli-test-secret-0123456789abcdef")
    emails = prepare(cfg, n=30)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    sender = threading.Thread(target=lambda: [service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
                                              for a, b in batches], daemon=True)
    sender.start()
    watched = papermail(tmp_path, "status", "--watch", "--date", DAY.isoformat(),
                        env={"DATABASE_URL": database_url, "SMTP_URL": url})
    sender.join(timeout=60)
    assert len(handler.messages) == len(emails)  # --watch returned once the last one was recorded
    assert "30 sent" in watched.stdout and "Traceback" not in watched.stderr
    service.finish(cfg, issue_id=issue_id)
    missing = papermail(tmp_path, "status", "--watch", "--date", "2024-01-01", env={"DATABASE_URL": database_url},
                        check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "2024-01-01" in missing.stderr
