"""Sending an issue to a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from pipeline import service
from pipeline.audience.tokens import Purpose, Signer
from pipeline.delivery.messengers import SMTPMessenger
from pipeline.errors import DeliveryError
from pipeline.models import Delivery, DeliveryStatus, Issue, IssueStatus, Paper, Subscriber, SubscriberStatus
from tests.support.sending import DAY, counts, prepare, send_all, subscribe


@pytest.fixture
def cfg(make_settings, database_url, smtp_server):
    _, url = smtp_server
    return make_settings(database_url=database_url, smtp_url=url, send_batch_size=3, claim_size=2)


def test_every_confirmed_subscriber_gets_one_valid_message(cfg, smtp_server):
    handler, _ = smtp_server
    emails = prepare(cfg, n=7, pending=["waiting@example.org"])
    issue_id, results = send_all(cfg)

    assert sorted(r for m in handler.messages for r in m.rcpt) == emails  # pending address gets nothing
    assert len(results) == 3  # 7 deliveries in batches of 3
    assert handler.connections == 3  # one SMTP connection per batch, reused for its messages
    assert counts(cfg, issue_id) == {"sent": 7}
    with Session(service.engine(cfg)) as session:
        issue = session.get(Issue, issue_id)
        assert issue.status == IssueStatus.finished and issue.finished_at is not None
        top_title = issue.items[0]["title"]
        uids = {s.email: s.uid for s in session.exec(select(Subscriber))}

    unsubscribe = Signer(cfg.secret_key, Purpose.unsubscribe)
    message_ids = set()
    for received in handler.messages:
        msg = received.message
        (rcpt,) = received.rcpt
        assert received.mail_from == "digest@papers.example.org"
        assert msg["To"] == rcpt
        assert msg.get_content_type() == "multipart/alternative"
        text, html = (p.get_content() for p in msg.iter_parts())
        assert top_title in text
        # The unsubscribe link is this subscriber's own, signed, carrying the opaque id only.
        url = msg["List-Unsubscribe"].split(",")[0].strip()[1:-1]
        assert url.startswith("https://papers.example.org/u/") and rcpt not in url
        assert unsubscribe.unsign(url.rsplit("/", 1)[1]) == uids[rcpt]
        assert url in text and f'href="{url}"' in html
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        message_ids.add(msg["Message-ID"])
    assert len(message_ids) == 7


def test_a_second_run_sends_nothing(cfg, smtp_server):
    handler, _ = smtp_server
    prepare(cfg, n=4)
    send_all(cfg)
    subscribe(cfg, ["late@example.org"])  # joined after the issue went out: not in its snapshot
    issue_id, results = send_all(cfg)
    assert len(handler.messages) == 4
    assert results == []
    assert counts(cfg, issue_id) == {"sent": 4}


def test_temporary_and_permanent_failures_are_recorded_and_do_not_stop_the_batch(cfg, smtp_server, smtp_script):
    handler, _ = smtp_server
    emails = prepare(cfg, n=6)
    smtp_script.rcpt_replies[emails[1]] = "451 4.3.0 try again later"
    smtp_script.rcpt_replies[emails[2]] = "550 5.1.1 no such user"
    smtp_script.data_replies[emails[3]] = "421 4.7.0 closing channel"
    issue_id, _ = send_all(cfg)

    assert sorted(r for m in handler.messages for r in m.rcpt) == [emails[0], emails[4], emails[5]]
    with Session(service.engine(cfg)) as session:
        rows = {s.email: d for d, s in session.exec(
            select(Delivery, Subscriber).where(Delivery.subscriber_id == Subscriber.id))}
        issue = session.get(Issue, issue_id)
    assert rows[emails[1]].status == DeliveryStatus.retry and rows[emails[1]].next_attempt_at is not None
    assert rows[emails[1]].smtp_reply.startswith("451")
    assert rows[emails[2]].status == DeliveryStatus.failed and "5.1.1" in rows[emails[2]].smtp_reply
    assert rows[emails[3]].status == DeliveryStatus.retry and rows[emails[3]].smtp_reply.startswith("421")
    assert issue.status == IssueStatus.sending  # retries keep it open

    # Once due, a later run retries only those, and the issue finishes.
    smtp_script.rcpt_replies.clear()
    smtp_script.data_replies.clear()
    with Session(service.engine(cfg)) as session:
        for d in session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.retry)):
            d.next_attempt_at = d.updated_at
            session.add(d)
        session.commit()
    send_all(cfg)
    assert sorted(r for m in handler.messages for r in m.rcpt) == sorted([emails[i] for i in (0, 1, 3, 4, 5)])
    assert counts(cfg, issue_id) == {"sent": 5, "failed": 1}


def test_connection_dropped_after_the_final_dot_is_uncertain_not_resent(cfg, smtp_server, smtp_script):
    handler, _ = smtp_server
    emails = prepare(cfg, n=5)
    smtp_script.drop_after_data.add(emails[2])
    issue_id, _ = send_all(cfg)
    # The server got it but the reply was lost (RFC 1047): recorded as uncertain, never sent again.
    assert counts(cfg, issue_id) == {"sent": 4, "uncertain": 1}
    send_all(cfg)
    assert sorted(r for m in handler.messages for r in m.rcpt) == emails
    with Session(service.engine(cfg)) as session:
        issue = session.get(Issue, issue_id)
    assert issue.status == IssueStatus.finished


def test_connection_dropped_before_the_final_dot_is_retried_not_uncertain(cfg, smtp_server, monkeypatch):
    """Halfway through the message the connection breaks: the server accepted nothing, so it is tried again."""
    import smtplib

    handler, _ = smtp_server
    emails = prepare(cfg, n=3)
    real_send, broken = smtplib.SMTP.send, []

    def send(self, data):  # noqa: ANN001, ANN202
        if isinstance(data, bytes) and data.endswith(b".\r\n") and len(data) > 1000 and not broken:
            broken.append(True)
            real_send(self, data[: len(data) // 2])  # half the message, then the line goes dead
            raise BrokenPipeError(32, "Broken pipe")
        return real_send(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    issue_id, _ = send_all(cfg)
    assert broken and counts(cfg, issue_id) == {"sent": 2, "retry": 1}
    with Session(service.engine(cfg)) as session:
        retry = session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.retry)).one()
        assert "connection lost" in retry.last_error
    got = sorted(r for m in handler.messages for r in m.rcpt)
    assert len(got) == 2 and set(got) < set(emails)  # the broken one never reached the server


def test_unsubscribed_before_its_turn_gets_nothing(cfg, smtp_server):
    handler, _ = smtp_server
    emails = prepare(cfg, n=4)
    issue_id, batches = service.start_sending(cfg, day=DAY)  # the snapshot includes emails[3]
    with Session(service.engine(cfg)) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == emails[3])).one()
        sub.status = SubscriberStatus.unsubscribed
        session.add(sub)
        session.commit()
    for a, b in batches:
        service.send_range(cfg, issue_id=issue_id, after_id=a, upto_id=b)
    assert emails[3] not in [r for m in handler.messages for r in m.rcpt]
    assert counts(cfg, issue_id) == {"sent": 3, "skipped": 1}


class CrashingMessenger:
    """Sends through a real SMTP messenger, then the process "dies" before message ``crash_at``."""

    def __init__(self, inner: SMTPMessenger, crash_at: int) -> None:
        self.inner, self.crash_at, self.count = inner, crash_at, 0

    def wire_for(self, template, recipient):
        return self.inner.wire_for(template, recipient)

    def send(self, **kw):
        self.count += 1
        if self.count == self.crash_at:
            raise KeyboardInterrupt  # as a signal would, between two messages
        return self.inner.send(**kw)

    def close(self):
        self.inner.close()


def test_crash_mid_batch_then_rerun_sends_each_remaining_subscriber_once(cfg, smtp_server):
    from pipeline.delivery.batch import send_batch

    handler, url = smtp_server
    emails = prepare(cfg, n=8)
    issue_id, _ = service.start_sending(cfg, day=DAY)
    crashing = CrashingMessenger(SMTPMessenger(url, timeout=10), crash_at=4)
    with pytest.raises(KeyboardInterrupt):
        send_batch(service.engine(cfg), issue_id=issue_id, after_id=0, upto_id=10**9, messenger=crashing,
                   ctx=service.send_context(cfg))
    crashing.close()
    assert len(handler.messages) == 3
    # The interrupted message is recorded as uncertain (it may have been in flight); the rest wait.
    assert counts(cfg, issue_id) == {"sent": 3, "uncertain": 1, "pending": 4}

    send_all(cfg)
    received = [r for m in handler.messages for r in m.rcpt]
    assert len(received) == len(set(received)) == 7
    assert set(emails) - set(received) == {emails[3]}
    assert counts(cfg, issue_id) == {"sent": 7, "uncertain": 1}


def test_stale_claim_of_a_dead_sender_is_recovered(cfg, smtp_server):
    """A sender killed outright leaves rows "sending"; once the lease runs out they are settled."""

    handler, _ = smtp_server
    emails = prepare(cfg, n=5)
    issue_id, _ = service.start_sending(cfg, day=DAY)
    engine = service.engine(cfg)
    # What a SIGKILLed batch leaves: two rows recorded sent, three still claimed under its lease.
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM delivery ORDER BY id"))]
        conn.execute(text("UPDATE delivery SET status='sent' WHERE id IN (:a, :b)"), {"a": ids[0], "b": ids[1]})
        conn.execute(
            text("UPDATE delivery SET status='sending', claim='dead', attempts=1, "
                 "lease_until=:past WHERE id > :b"),
            {"past": dt.datetime(2000, 1, 1), "b": ids[1]},
        )
    send_all(cfg)
    # First row of the dead claim may have been in flight: uncertain. The two after it were never tried.
    assert sorted(r for m in handler.messages for r in m.rcpt) == [emails[3], emails[4]]
    assert counts(cfg, issue_id) == {"sent": 4, "uncertain": 1}


def test_unreachable_server_leaves_every_delivery_retryable(make_settings, database_url):
    cfg = make_settings(database_url=database_url, smtp_url="smtp://127.0.0.1:1", send_batch_size=10)
    prepare(cfg, n=3)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    with pytest.raises(DeliveryError, match="cannot connect to SMTP server 127.0.0.1:1"):
        service.send_range(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][1])
    assert counts(cfg, issue_id) == {"pending": 3}


def test_two_senders_on_the_same_batch_send_each_message_once(cfg, smtp_server):
    """A duplicated batch task (two workers, one batch) must not double-send: claims are compare-and-set."""
    import threading

    handler, _ = smtp_server
    emails = prepare(cfg, n=30)
    issue_id, _ = service.start_sending(cfg, day=DAY)
    errors = []

    def sender():
        try:
            service.send_range(cfg, issue_id=issue_id, after_id=0, upto_id=10**9)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    received = [r for m in handler.messages for r in m.rcpt]
    assert sorted(received) == emails  # everyone once, nobody twice
    assert counts(cfg, issue_id) == {"sent": 30}


def test_building_the_same_day_twice_at_once_makes_one_issue(make_settings, database_url):
    import threading

    cfg = make_settings(database_url=database_url)
    service.ingest(cfg, day=DAY, source="sample")
    ids, barrier = [], threading.Barrier(3)

    def build():
        barrier.wait()
        ids.append(service.build(cfg, day=DAY)[0].id)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 3 and len(set(ids)) == 1


class SteppingClock:
    """A clock that moves ``step`` seconds every time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = dt.datetime.now(dt.UTC), dt.timedelta(seconds=step)

    def __call__(self) -> dt.datetime:
        self.now += self.step
        return self.now


def test_a_slow_batch_renews_its_lease_and_keeps_its_rows(cfg, smtp_server):
    from pipeline.delivery.batch import send_batch

    handler, url = smtp_server
    prepare(cfg, n=6)
    issue_id, _ = service.start_sending(cfg, day=DAY)
    ctx = service.send_context(cfg)
    ctx = dataclasses.replace(service.send_context(cfg), claim_size=6, lease_seconds=10)
    clock, inner = SteppingClock(4), SMTPMessenger(url, timeout=10)
    lapsed = []

    class Watching:
        """Checks, as each message goes out, that the rows still claimed hold an unexpired lease."""

        def wire_for(self, template, recipient):
            return inner.wire_for(template, recipient)

        def send(self, **kw):
            with Session(service.engine(cfg)) as session:
                soonest = session.exec(select(func.min(Delivery.lease_until)).where(
                    Delivery.status == DeliveryStatus.sending)).one()
            if soonest is not None and soonest <= clock.now:
                lapsed.append(kw["recipient"].address)
            return inner.send(**kw)

        def close(self):
            inner.close()

    # Each message "takes" 4 s: the 10 s lease would lapse three messages in without renewal.
    result = send_batch(service.engine(cfg), issue_id=issue_id, after_id=0, upto_id=10**9,
                        messenger=Watching(), ctx=ctx, clock=clock)
    inner.close()
    assert result.sent == 6 and len(handler.messages) == 6
    assert lapsed == []


def test_a_batch_whose_claim_was_recovered_by_another_stops_instead_of_double_sending(cfg, smtp_server):
    from pipeline.delivery.batch import LeaseLost, send_batch
    from pipeline.delivery.ledger import recover_stale_claims

    handler, url = smtp_server
    emails = prepare(cfg, n=6)
    issue_id, _ = service.start_sending(cfg, day=DAY)
    ctx = service.send_context(cfg)
    ctx = dataclasses.replace(service.send_context(cfg), claim_size=6, lease_seconds=10)
    inner = SMTPMessenger(url, timeout=10)

    class StalledThenRecovered:
        """After two messages the sender stalls past its lease; meanwhile another process recovers the claim."""

        calls = 0
        def wire_for(self, template, recipient):
            return inner.wire_for(template, recipient)

        def send(self, **kw):
            self.calls += 1
            if self.calls == 3:
                with Session(service.engine(cfg)) as session:
                    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
                    recover_stale_claims(session, issue_id=issue_id, now=far, journal_dir=ctx.journal_dir)
                    session.commit()
            return inner.send(**kw)

        def close(self):
            inner.close()

    with pytest.raises(LeaseLost):
        send_batch(service.engine(cfg), issue_id=issue_id, after_id=0, upto_id=10**9,
                   messenger=StalledThenRecovered(), ctx=ctx, clock=SteppingClock(4))
    inner.close()
    send_all(cfg)
    received = [r for m in handler.messages for r in m.rcpt]
    assert len(received) == len(set(received))  # nobody twice
    # The recoverer marked the third (possibly in flight) uncertain; the rest were sent once, by the rerun.
    assert counts(cfg, issue_id) == {"sent": 5, "uncertain": 1}
    assert set(emails) - set(received) <= {emails[2]}


def test_an_unreachable_server_is_waited_for_on_the_same_batch(make_settings, database_url):
    """The server is down for the first two tries: the batch waits (1 s, 2 s, ...) and then sends it all,
    instead of failing at once and leaving its rows for a retry ten minutes later."""
    from aiosmtpd.controller import Controller

    from tests.support.services import free_port
    from tests.support.smtp import RecordingHandler, SMTPScript

    port = free_port()
    cfg = make_settings(database_url=database_url, smtp_url=f"smtp://127.0.0.1:{port}", send_batch_size=100)
    emails = prepare(cfg, n=3)
    handler, waits, servers = RecordingHandler(SMTPScript()), [], []

    def sleep(seconds: float) -> None:  # the outage ends during the second wait
        waits.append(seconds)
        if len(waits) == 2:
            servers.append(Controller(handler, hostname="127.0.0.1", port=port, decode_data=False))
            servers[0].start()

    issue_id, batches = service.start_sending(cfg, day=DAY)
    try:
        result = service.send_range_patiently(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][1],
                                              sleep=sleep)
    finally:
        for server in servers:
            server.stop()
    assert waits == [1.0, 2.0] and result.sent == 3
    assert sorted(r for m in handler.messages for r in m.rcpt) == emails
    assert counts(cfg, issue_id) == {"sent": 3}


def test_the_waiting_stops_after_a_while_and_the_error_goes_up(make_settings, database_url):
    from tests.support.services import free_port

    cfg = make_settings(database_url=database_url, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    prepare(cfg, n=1)
    issue_id, batches = service.start_sending(cfg, day=DAY)
    waits: list[float] = []
    with pytest.raises(DeliveryError, match="cannot connect"):
        service.send_range_patiently(cfg, issue_id=issue_id, after_id=batches[0][0], upto_id=batches[0][1],
                                     waits=(1.0, 2.0), sleep=waits.append)
    assert waits == [1.0, 2.0] and counts(cfg, issue_id) == {"pending": 1}  # nothing lost, nothing uncertain



def test_the_frozen_issue_keeps_each_papers_listing_and_arxiv_dates(cfg, smtp_server):
    prepare(cfg, n=1)
    with Session(service.engine(cfg)) as session:
        issue = session.exec(select(Issue)).one()
        papers = {p.arxiv_id: p for p in session.exec(select(Paper))}
    for frozen in issue.items:
        paper = papers[frozen["arxiv_id"]]
        assert frozen["listed_on"] == DAY.isoformat() == paper.listed_on.isoformat()
        assert frozen["published_on"] == paper.published_at.date().isoformat()
    # The sample day's list holds papers first posted to arXiv years before: the mail marks them.
    assert any(dt.date.fromisoformat(f["published_on"]) < DAY - dt.timedelta(days=60) for f in issue.items)
    assert "older paper" in issue.text
