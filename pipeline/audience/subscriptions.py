"""What a person can do to their own subscription, through the links and pages of the site.

Every function takes the subscriber's opaque ``uid`` (from a verified token),
never an address from a link. State changes happen only here and only on
POST requests (mail scanners open every link with GET). Each is idempotent:
confirming or unsubscribing twice changes nothing the second time.

    (new) ──request──▶ pending ──confirm──▶ active ──unsubscribe──▶ unsubscribed
                          │                   ▲                          │
                          └──unsubscribe──────┼──────────────────────────┤
                                              └──confirm (a fresh link)──┘ ◀─request / resubscribe

An unsubscribed address stays unsubscribed until its owner confirms a link
minted after they unsubscribed: a stranger's form post, a resubscribe button
pressed in an old mail, an operator's import or an expiry job can only lead to
a confirmation mail, never to a digest. Asking to subscribe answers the same
for every address; whether a mail goes out is decided here, quietly.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pydantic import BaseModel, Field
from sqlmodel import Session, col, delete, func, select

from pipeline.audience import interests as reader_interests
from pipeline.audience.interests import Change, Interest
from pipeline.audience.subscribers import validate_new_address
from pipeline.audience.suppression import lift, suppress
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import (
    MAX_DIGEST_SIZE,
    MIN_DIGEST_SIZE,
    Delivery,
    Frequency,
    ReaderModel,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
    Vote,
)

CONFIRMATION_INTERVAL = dt.timedelta(days=1)  # at most one confirmation mail per address per day

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    subscriber: Subscriber
    send_confirmation: bool  # False: nothing to confirm (active, bounced), or a link went out less than a day ago

    @property
    def subscriber_id(self) -> int:
        assert self.subscriber.id is not None  # flushed when it was stored
        return self.subscriber.id


class Preferences(BaseModel):
    """What a subscriber may change; the bounds are checked here, for the web form and any other caller."""

    paused: bool = False
    frequency: Frequency = Frequency.daily
    weekday: int = Field(0, ge=0, le=6)
    digest_size: int = Field(10, ge=MIN_DIGEST_SIZE, le=MAX_DIGEST_SIZE)
    mix: int = Field(50, ge=0, le=100)  # 0: the trend alone orders the papers; 100: the reader's votes alone
    send_anyway: bool = False

    @classmethod
    def of(cls, subscriber: Subscriber, *, default_size: int) -> Preferences:
        return cls(
            paused=subscriber.paused,
            frequency=subscriber.frequency,
            weekday=subscriber.weekday,
            digest_size=subscriber.digest_size or min(max(default_size, MIN_DIGEST_SIZE), MAX_DIGEST_SIZE),
            mix=subscriber.mix,
            send_anyway=subscriber.send_anyway,
        )


def find(session: Session, uid: str) -> Subscriber | None:
    return session.exec(select(Subscriber).where(Subscriber.uid == uid)).first()


@dataclass(frozen=True, slots=True)
class Resolved:
    """The subscriber a token names, and when it was signed (confirmation tokens only)."""

    subscriber: Subscriber
    signed_at: dt.datetime | None = None


def resolve_token(session: Session, *, secret_key: str, purpose: Purpose, token: str,
                  max_age: int | None = None) -> Resolved | None:
    """The subscriber behind a link's (or a mailed request's) token, or None.

    None alike for a tampered token, one signed with another key or for another purpose,
    an expired one (``max_age``, confirmation tokens), and one whose subscriber is gone:
    whoever holds a bad token learns nothing from the answer.
    """
    signer = Signer(secret_key, purpose)
    if purpose is Purpose.confirm:
        found = signer.unsign_timed(token, max_age=max_age)
        uid, signed_at = found if found is not None else (None, None)
    else:
        uid, signed_at = signer.unsign(token), None
    subscriber = find(session, uid) if uid is not None else None
    return None if subscriber is None else Resolved(subscriber, signed_at)


def awaiting_confirmation(subscriber: Subscriber) -> bool:
    """Owed a confirmation: pending, or unsubscribed and asked for again since."""
    if subscriber.status is SubscriberStatus.pending:
        return True
    asked, left = subscriber.confirmation_sent_at, subscriber.unsubscribed_at or subscriber.updated_at
    return subscriber.status is SubscriberStatus.unsubscribed and asked is not None and asked > left


def request_subscription(session: Session, *, email: str, now: dt.datetime) -> SubscribeRequest:
    """Record a wish to subscribe; the caller sends the confirmation mail when told to.

    The person sees the same answer whatever comes of it (no address enumeration), and every
    path writes the row once, so the answer takes about as long too. Raises SubscriberError for
    an address that is not valid (which says nothing about who is subscribed).
    """
    address = validate_new_address(email)
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if subscriber is None:
        subscriber = Subscriber(email=address, status=SubscriberStatus.pending, confirmation_sent_at=now,
                                requested_at=now, created_at=now, updated_at=now)
        session.add(subscriber)
        session.flush()
        return SubscribeRequest(subscriber, send_confirmation=True)
    subscriber.requested_at = now
    session.add(subscriber)
    return SubscribeRequest(subscriber, send_confirmation=_ask_to_confirm(subscriber, now=now))


def _ask_to_confirm(subscriber: Subscriber, *, now: dt.datetime) -> bool:
    """Note that a confirmation mail is due, unless there is nothing to confirm or one went out today.

    The status does not change: an unsubscribed address stays unsubscribed until its owner confirms.
    """
    if subscriber.status not in (SubscriberStatus.pending, SubscriberStatus.unsubscribed):
        return False  # active: nothing to confirm; bounced: only an operator clears that
    sent = subscriber.confirmation_sent_at
    if sent is not None and now - sent < CONFIRMATION_INTERVAL and awaiting_confirmation(subscriber):
        return False  # subscription bombing: one mail a day at most, and the page says the same anyway
    subscriber.confirmation_sent_at = now
    return True


def can_confirm(subscriber: Subscriber, *, issued_at: dt.datetime | None) -> bool:
    """Would a confirmation link signed at ``issued_at`` make this subscriber active?

    Pending: yes. Unsubscribed: only a link signed for a request made since the unsubscribe
    (a link from the first sign-up confirms nothing). Active, bounced: no.
    """
    if not awaiting_confirmation(subscriber):
        return False
    if subscriber.status is SubscriberStatus.pending:
        return True
    asked = subscriber.confirmation_sent_at
    return issued_at is not None and asked is not None and issued_at >= asked.replace(microsecond=0)


def confirm(session: Session, *, uid: str, now: dt.datetime, issued_at: dt.datetime | None = None) -> Subscriber | None:
    """The owner's opt-in (see ``can_confirm``); ``issued_at`` is when the link was signed.

    Lifts the address's suppression: this is the fresh confirmation it waits for.
    """
    subscriber = find(session, uid)
    if subscriber is None or not can_confirm(subscriber, issued_at=issued_at):
        return subscriber
    subscriber.status = SubscriberStatus.active
    subscriber.confirmed_at = subscriber.updated_at = now
    subscriber.unsubscribed_at = None
    session.add(subscriber)
    lift(session, address=subscriber.email, now=now)
    return subscriber


def unsubscribe(session: Session, *, uid: str, now: dt.datetime) -> Subscriber | None:
    """Stop all mail to this subscriber at once (batches check at send time), and keep it stopped."""
    subscriber = find(session, uid)
    if subscriber is not None and subscriber.status != SubscriberStatus.unsubscribed:
        subscriber.status = SubscriberStatus.unsubscribed  # also when bounced: their choice outranks ours
        subscriber.unsubscribed_at = subscriber.updated_at = now
        session.add(subscriber)
        suppress(session, address=subscriber.email, reason=SuppressionReason.unsubscribed, now=now)
    return subscriber


def resubscribe(session: Session, *, uid: str, now: dt.datetime) -> SubscribeRequest | None:
    """The "Resubscribe" button of an unsubscribe page: a confirmation mail, not a subscription.

    The token only proves that the mail once reached this address, and old mail is forwarded,
    shared and archived: the person must say yes again from their inbox.
    """
    subscriber = find(session, uid)
    if subscriber is None:
        return None
    return SubscribeRequest(subscriber, send_confirmation=_ask_to_confirm(subscriber, now=now))


def update_preferences(session: Session, *, uid: str, prefs: Preferences, now: dt.datetime) -> Subscriber | None:
    subscriber = find(session, uid)
    if subscriber is None:
        return None
    subscriber.paused = prefs.paused
    subscriber.frequency = prefs.frequency
    subscriber.weekday = prefs.weekday
    subscriber.digest_size = prefs.digest_size
    subscriber.mix = prefs.mix
    subscriber.send_anyway = prefs.send_anyway
    subscriber.updated_at = now
    session.add(subscriber)
    return subscriber


def _for_update(session: Session, uid: str) -> Subscriber | None:
    # Locked on PostgreSQL until the commit, so two forms sent at once both count (SQLite writes one at a time).
    return session.exec(select(Subscriber).where(Subscriber.uid == uid).with_for_update()
                        .execution_options(populate_existing=True)).first()


def renew_feed(session: Session, *, uid: str, now: dt.datetime) -> bool:
    """A new address for the reader's private feed: the generation it carries goes up, the old one is dead."""
    subscriber = _for_update(session, uid)
    if subscriber is None:
        return False
    subscriber.feed_generation += 1
    subscriber.updated_at = now
    session.add(subscriber)
    return True


def add_interest(session: Session, *, uid: str, interest: Interest, now: dt.datetime) -> Change | None:
    """Add one interest to the reader's (see ``interests.add``); None if there is no such reader.

    InterestError if they have as many as they may; nothing is changed then.
    """
    subscriber = _for_update(session, uid)
    if subscriber is None:
        return None
    kept, change = reader_interests.add(reader_interests.load(subscriber.topics), interest)
    if change != "already":
        subscriber.topics = reader_interests.dump(kept)
        subscriber.updated_at = now
        session.add(subscriber)
    return change


def remove_interest(session: Session, *, uid: str, interest: Interest, now: dt.datetime) -> bool:
    """Remove one interest (in whichever mode it is kept); False if the reader did not have it."""
    subscriber = _for_update(session, uid)
    if subscriber is None:
        return False
    current = reader_interests.load(subscriber.topics)
    kept = reader_interests.remove(current, interest)
    if len(kept) == len(current):
        return False
    subscriber.topics = reader_interests.dump(kept)
    subscriber.updated_at = now
    session.add(subscriber)
    return True


@dataclass(slots=True)
class Expiry:
    forgotten: int = 0  # never confirmed, nothing else known: deleted
    marked: int = 0  # pending with a history (confirmed once, mailed, unsubscribed): back to unsubscribed
    failed: list[str] = field(default_factory=list)  # rows that could not be handled, with the reason


def expire_pending(session: Session, *, now: dt.datetime, max_age: dt.timedelta) -> Expiry:
    """Forget addresses that never confirmed (subscription bombing leaves nothing behind).

    Only an address that was never confirmed and never mailed is deleted. A pending row with a
    history (left pending by an earlier version after a new request) is marked unsubscribed instead,
    what its owner last said. Each row is committed on its own: one that fails is reported and the
    run goes on, so a bad row cannot wedge every later run.
    """
    cutoff = now - max_age
    asked_at = func.coalesce(Subscriber.confirmation_sent_at, Subscriber.created_at)
    stale = session.exec(
        select(Subscriber.id).where(Subscriber.status == SubscriberStatus.pending, asked_at < cutoff)
    ).all()
    report = Expiry()
    for subscriber_id in stale:
        if subscriber_id is None:  # ids of stored rows; the type allows None
            continue
        try:
            _expire_one(session, subscriber_id, now=now, report=report)
            session.commit()
        except Exception as exc:  # noqa: BLE001  (any database error on one row)
            session.rollback()
            log.warning("expiring subscriber %s failed: %s", subscriber_id, exc)
            report.failed.append(f"subscriber {subscriber_id}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return report


def _expire_one(session: Session, subscriber_id: int, *, now: dt.datetime, report: Expiry) -> None:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status is not SubscriberStatus.pending:
        return  # confirmed or gone since the list was read
    mailed = session.exec(select(Delivery.id).where(Delivery.subscriber_id == subscriber_id).limit(1)).first()
    if subscriber.confirmed_at is None and subscriber.unsubscribed_at is None and mailed is None:
        session.execute(delete(Vote).where(col(Vote.subscriber_id) == subscriber_id))  # none, unless it was mailed
        session.execute(delete(ReaderModel).where(col(ReaderModel.subscriber_id) == subscriber_id))
        session.delete(subscriber)
        session.flush()
        report.forgotten += 1
        return
    subscriber.status = SubscriberStatus.unsubscribed
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
    subscriber.updated_at = now
    session.add(subscriber)
    suppress(session, address=subscriber.email, reason=SuppressionReason.unsubscribed, now=now)
    session.flush()
    report.marked += 1
