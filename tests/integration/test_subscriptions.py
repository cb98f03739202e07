"""The subscription state machine, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.subscriptions import (
    Preferences,
    confirm,
    expire_pending,
    request_subscription,
    resubscribe,
    unsubscribe,
    update_preferences,
)
from pipeline.errors import SubscriberError
from pipeline.models import Delivery, Frequency, Issue, Subscriber, SubscriberStatus

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def session(make_settings, database_url):
    with Session(service.engine(make_settings(database_url=database_url)), expire_on_commit=False) as s:
        yield s


def status(session, email):
    session.flush()
    return session.exec(select(Subscriber.status).where(Subscriber.email == email)).one()


def test_double_opt_in_lifecycle(session):
    req = request_subscription(session, email="Reader@Example.org", now=T0)
    assert req.send_confirmation and req.subscriber.status == SubscriberStatus.pending
    assert req.subscriber.email == "reader@example.org"
    uid = req.subscriber.uid
    assert confirm(session, uid=uid, now=T0).status == SubscriberStatus.active
    assert confirm(session, uid=uid, now=T0).status == SubscriberStatus.active  # twice is harmless
    assert unsubscribe(session, uid=uid, now=T0).status == SubscriberStatus.unsubscribed
    assert unsubscribe(session, uid=uid, now=T0).status == SubscriberStatus.unsubscribed
    # A stale confirmation link does not undo an unsubscribe...
    assert confirm(session, uid=uid, now=T0, issued_at=T0).status == SubscriberStatus.unsubscribed
    # ...nor does the resubscribe button from the unsubscribe page: it sends a new link...
    later = T0 + dt.timedelta(minutes=5)
    again = resubscribe(session, uid=uid, now=later)
    assert again.send_confirmation and again.subscriber.status == SubscriberStatus.unsubscribed
    # ...and only a link signed since then brings the address back.
    assert confirm(session, uid=uid, now=later, issued_at=T0).status == SubscriberStatus.unsubscribed
    assert confirm(session, uid=uid, now=later, issued_at=later).status == SubscriberStatus.active


def test_active_and_bounced_addresses_get_no_new_confirmation(session):
    uid = request_subscription(session, email="a@example.org", now=T0).subscriber.uid
    confirm(session, uid=uid, now=T0)
    assert request_subscription(session, email="a@example.org", now=T0).send_confirmation is False
    bounced = Subscriber(email="b@example.org", status=SubscriberStatus.bounced)
    session.add(bounced)
    session.flush()
    assert request_subscription(session, email="b@example.org", now=T0).send_confirmation is False
    again = resubscribe(session, uid=bounced.uid, now=T0)
    assert not again.send_confirmation and again.subscriber.status == SubscriberStatus.bounced


def test_one_confirmation_mail_per_address_per_day_and_nobody_is_told(session):
    assert request_subscription(session, email="c@example.org", now=T0).send_confirmation
    # The second request within a day quietly sends nothing (no error that would differ by state).
    assert not request_subscription(session, email="c@example.org", now=T0 + dt.timedelta(hours=23)).send_confirmation
    assert request_subscription(session, email="c@example.org", now=T0 + dt.timedelta(hours=25)).send_confirmation


def test_every_request_writes_the_row_whatever_its_state(session):
    """The same work for every address, so the answer takes as long for a subscriber as for a stranger."""
    uid = request_subscription(session, email="f@example.org", now=T0).subscriber.uid
    confirm(session, uid=uid, now=T0)
    later = T0 + dt.timedelta(hours=2)
    assert request_subscription(session, email="f@example.org", now=later).subscriber.requested_at == later


def test_unsubscribed_address_asking_again_must_confirm_again(session):
    uid = request_subscription(session, email="d@example.org", now=T0).subscriber.uid
    confirm(session, uid=uid, now=T0)
    unsubscribe(session, uid=uid, now=T0)
    req = request_subscription(session, email="d@example.org", now=T0 + dt.timedelta(days=2))
    # A confirmation goes out, but the row stays unsubscribed: a stranger's request changes nothing else.
    assert req.send_confirmation and status(session, "d@example.org") == SubscriberStatus.unsubscribed


def test_an_internationalized_domain_is_stored_in_its_ascii_form(session):
    req = request_subscription(session, email="IDN@Bücher.example", now=T0)
    assert req.subscriber.email == "idn@xn--bcher-kva.example"
    # The same person typed either way is one subscriber.
    assert request_subscription(session, email="idn@xn--bcher-kva.example", now=T0).subscriber.id == req.subscriber.id


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@b.c\r\nBcc: x@example.org", "a@example..org", "ä@example.org",
                                 "=HYPERLINK(1)@example.org", "+cmd@example.org", "-x@example.org",
                                 "a\x1b]0;x@example.org", "a\x85b@example.org"])
def test_bad_addresses_are_refused_and_nothing_is_stored(session, bad):
    with pytest.raises(SubscriberError):
        request_subscription(session, email=bad, now=T0)
    assert session.exec(select(Subscriber)).all() == []


def test_unknown_uid_changes_nothing(session):
    assert confirm(session, uid="nobody", now=T0) is None
    assert unsubscribe(session, uid="nobody", now=T0) is None
    assert update_preferences(session, uid="nobody", prefs=Preferences(), now=T0) is None


def test_preferences_are_validated_and_saved(session):
    uid = request_subscription(session, email="e@example.org", now=T0).subscriber.uid
    prefs = Preferences(paused=True, frequency=Frequency.weekly, weekday=4, digest_size=25)
    sub = update_preferences(session, uid=uid, prefs=prefs, now=T0)
    assert (sub.paused, sub.frequency, sub.weekday, sub.digest_size) == (True, Frequency.weekly, 4, 25)
    assert Preferences.of(sub, default_size=10) == prefs
    for bad in ({"digest_size": 4}, {"digest_size": 26}, {"weekday": 7}, {"frequency": "hourly"}):
        with pytest.raises(ValidationError):
            Preferences(**bad)


def test_unconfirmed_addresses_expire(session):
    request_subscription(session, email="old@example.org", now=T0)
    request_subscription(session, email="new@example.org", now=T0 + dt.timedelta(days=6))
    uid = request_subscription(session, email="kept@example.org", now=T0).subscriber.uid
    confirm(session, uid=uid, now=T0)
    session.commit()
    expiry = expire_pending(session, now=T0 + dt.timedelta(days=7, hours=1), max_age=dt.timedelta(days=7))
    assert (expiry.forgotten, expiry.marked, expiry.failed) == (1, 0, [])
    session.commit()
    assert sorted(session.exec(select(Subscriber.email)).all()) == ["kept@example.org", "new@example.org"]


def test_expiry_marks_a_pending_row_with_history_and_goes_on_with_the_others(session):
    """Earlier versions left a former subscriber who asked again "pending", with deliveries: deleting it
    failed on the foreign key and stopped every later run. Now it is marked, and the others expire."""
    issue = Issue(date=dt.date(2025, 3, 21), as_of=T0, subject="s", html="h", text="t")
    former = Subscriber(email="former@example.org", status=SubscriberStatus.pending, created_at=T0,
                        confirmation_sent_at=T0, confirmed_at=T0, unsubscribed_at=T0)
    session.add_all([issue, former])
    session.flush()
    session.add(Delivery(issue_id=issue.id, subscriber_id=former.id))
    request_subscription(session, email="stranger@example.org", now=T0)
    session.commit()
    month_later = T0 + dt.timedelta(days=30)
    expiry = expire_pending(session, now=month_later, max_age=dt.timedelta(days=7))
    assert (expiry.forgotten, expiry.marked, expiry.failed) == (1, 1, [])
    assert status(session, "former@example.org") == SubscriberStatus.unsubscribed
    assert session.exec(select(Subscriber).where(Subscriber.email == "stranger@example.org")).first() is None
    again = expire_pending(session, now=month_later, max_age=dt.timedelta(days=7))
    assert (again.forgotten, again.marked, again.failed) == (0, 0, [])


def test_a_row_that_fails_to_expire_is_reported_and_the_others_still_expire(session, monkeypatch):
    from pipeline.audience import subscriptions

    for email in ("a@example.org", "b@example.org", "c@example.org"):
        request_subscription(session, email=email, now=T0)
    session.commit()
    first = session.exec(select(Subscriber.id).where(Subscriber.email == "a@example.org")).one()
    real = subscriptions._expire_one

    def flaky(session, subscriber_id, **kw):  # noqa: ANN001, ANN003, ANN202
        if subscriber_id == first:
            raise RuntimeError("the database refused this row")
        return real(session, subscriber_id, **kw)

    monkeypatch.setattr(subscriptions, "_expire_one", flaky)
    expiry = expire_pending(session, now=T0 + dt.timedelta(days=30), max_age=dt.timedelta(days=7))
    assert expiry.forgotten == 2 and len(expiry.failed) == 1 and "refused this row" in expiry.failed[0]
    assert session.exec(select(Subscriber.email)).all() == ["a@example.org"]
