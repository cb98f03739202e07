"""What a person can do to their own subscription, through the links and pages of the site.

Every function takes the subscriber's opaque ``uid`` (from a verified token),
never an address from a link. State changes happen only here and only on
POST requests (mail scanners open every link with GET). Each is idempotent:
confirming or unsubscribing twice changes nothing the second time.

    (new) ──request──▶ pending ──confirm──▶ active ◀──resubscribe──┐
                          │                   │                     │
                          └──unsubscribe──────┴──unsubscribe──▶ unsubscribed
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlmodel import Session, col, delete, func, select

from pipeline.errors import SubscriberError
from pipeline.models import MAX_DIGEST_SIZE, MIN_DIGEST_SIZE, Frequency, Subscriber, SubscriberStatus
from pipeline.subscribers import normalize_email

CONFIRMATION_INTERVAL = dt.timedelta(days=1)  # at most one confirmation mail per address per day


class TooSoon(SubscriberError):
    """A confirmation mail went to this address less than a day ago."""


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    subscriber: Subscriber
    send_confirmation: bool  # False for an address that is already active (or bounced): nothing to confirm


class Preferences(BaseModel):
    """What a subscriber may change; the bounds are checked here, for the web form and any other caller."""

    paused: bool = False
    frequency: Frequency = Frequency.daily
    weekday: int = Field(0, ge=0, le=6)
    digest_size: int = Field(10, ge=MIN_DIGEST_SIZE, le=MAX_DIGEST_SIZE)

    @classmethod
    def of(cls, subscriber: Subscriber, *, default_size: int) -> Preferences:
        return cls(
            paused=subscriber.paused,
            frequency=subscriber.frequency,
            weekday=subscriber.weekday,
            digest_size=subscriber.digest_size or min(max(default_size, MIN_DIGEST_SIZE), MAX_DIGEST_SIZE),
        )


def find(session: Session, uid: str) -> Subscriber | None:
    return session.exec(select(Subscriber).where(Subscriber.uid == uid)).first()


def request_subscription(session: Session, *, email: str, now: dt.datetime) -> SubscribeRequest:
    """Record a wish to subscribe; the caller sends the confirmation mail when asked to.

    The answer the person sees must not depend on the outcome (no address
    enumeration); only ``TooSoon`` (a second request within a day) is visible.
    Raises SubscriberError for an address that is not valid.
    """
    address = normalize_email(email)
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, status=SubscriberStatus.pending, confirmation_sent_at=now,
                                created_at=now, updated_at=now)
        session.add(subscriber)
        session.flush()
        return SubscribeRequest(subscriber, send_confirmation=True)
    if subscriber.status in (SubscriberStatus.active, SubscriberStatus.bounced):
        return SubscribeRequest(subscriber, send_confirmation=False)
    sent = subscriber.confirmation_sent_at
    if sent is not None and now - sent < CONFIRMATION_INTERVAL:
        raise TooSoon("a confirmation email was sent to this address less than a day ago; please check your inbox")
    # Pending, or unsubscribed and asking again: nothing is sent to them until they confirm.
    subscriber.status = SubscriberStatus.pending
    subscriber.confirmation_sent_at = subscriber.updated_at = now
    session.add(subscriber)
    return SubscribeRequest(subscriber, send_confirmation=True)


def confirm(session: Session, *, uid: str, now: dt.datetime) -> Subscriber | None:
    """pending → active. Active stays active; an address unsubscribed since stays unsubscribed."""
    subscriber = find(session, uid)
    if subscriber is not None and subscriber.status == SubscriberStatus.pending:
        subscriber.status = SubscriberStatus.active
        subscriber.confirmed_at = subscriber.updated_at = now
        session.add(subscriber)
    return subscriber


def unsubscribe(session: Session, *, uid: str, now: dt.datetime) -> Subscriber | None:
    """Stop all mail to this subscriber at once (batches check at send time)."""
    subscriber = find(session, uid)
    if subscriber is not None and subscriber.status != SubscriberStatus.unsubscribed:
        subscriber.status = SubscriberStatus.unsubscribed
        subscriber.unsubscribed_at = subscriber.updated_at = now
        session.add(subscriber)
    return subscriber


def resubscribe(session: Session, *, uid: str, now: dt.datetime) -> Subscriber | None:
    """unsubscribed → active: the token came in mail to this address, which proves it is theirs.

    A bounced address stays bounced: only an operator clears that.
    """
    subscriber = find(session, uid)
    if subscriber is not None and subscriber.status == SubscriberStatus.unsubscribed:
        subscriber.status = SubscriberStatus.active
        subscriber.unsubscribed_at = None
        subscriber.updated_at = now
        session.add(subscriber)
    return subscriber


def update_preferences(session: Session, *, uid: str, prefs: Preferences, now: dt.datetime) -> Subscriber | None:
    subscriber = find(session, uid)
    if subscriber is None:
        return None
    subscriber.paused = prefs.paused
    subscriber.frequency = prefs.frequency
    subscriber.weekday = prefs.weekday
    subscriber.digest_size = prefs.digest_size
    subscriber.updated_at = now
    session.add(subscriber)
    return subscriber


def expire_pending(session: Session, *, now: dt.datetime, max_age: dt.timedelta) -> int:
    """Forget addresses that never confirmed (subscription bombing leaves nothing behind)."""
    cutoff = now - max_age
    asked_at = func.coalesce(Subscriber.confirmation_sent_at, Subscriber.created_at)
    stale = session.exec(
        select(Subscriber.id).where(Subscriber.status == SubscriberStatus.pending, asked_at < cutoff)
    ).all()
    if stale:
        session.exec(delete(Subscriber).where(col(Subscriber.id).in_(stale)))  # type: ignore[call-overload]
    return len(stale)
