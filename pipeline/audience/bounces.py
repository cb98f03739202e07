"""Counting hard bounces against subscribers, from bounce mail and from 5xx replies while sending.

:func:`record_bounces` counts what a :class:`~pipeline.inbound.bounce_reports.BounceReport`
says (once per bounce message), :func:`mark_permanent_failure` does the same
for a 5xx received while sending, :func:`clear_bounces` is the operator's way back.

An address reaches ``bounce_limit`` hard bounces and becomes ``bounced``: the
dispatcher only mails ``active`` subscribers, so it stops being mailed until an
operator clears it (``papermail subscribers clear-bounces``). An unsubscribed
address is counted but stays unsubscribed.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, text
from sqlmodel import Session, col, select

from pipeline.audience.subscribers import normalize_email
from pipeline.audience.suppression import lift, suppress
from pipeline.compose.message_ids import read_message_id
from pipeline.inbound.bounce_reports import REASON_LENGTH, BounceReport, counts_against_address
from pipeline.inbound.outcomes import Line, Outcome
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
    db_time,
    utcnow,
)
from pipeline.text import clean_text


def _claim_bounce(session: Session, *, bounce_id: str, now: datetime) -> bool:
    """Note the bounce as processed; False if it was already (by us earlier, or by a concurrent run)."""
    # ON CONFLICT rather than a read then an insert: two runs over the same mailbox cannot both count it.
    inserted = session.execute(
        text("INSERT INTO processedbounce (message_id, processed_at) VALUES (:key, :now) "
             "ON CONFLICT (message_id) DO NOTHING"),
        {"key": bounce_id, "now": db_time(now)},
    )
    return inserted.rowcount == 1  # type: ignore[attr-defined]


def _counted(session: Session, subscriber: Subscriber, *, reason: str, now: datetime,
             bounce_limit: int) -> tuple[Outcome, str]:
    """Count one hard bounce on a loaded subscriber; what happened, and in words."""
    subscriber.hard_bounces += 1
    subscriber.last_bounce_at = subscriber.updated_at = now
    subscriber.last_bounce_reason = clean_text(reason)[:REASON_LENGTH]  # a forged bounce's escapes stay out
    count = f"{subscriber.hard_bounces}/{bounce_limit}"
    if subscriber.status == SubscriberStatus.active and subscriber.hard_bounces >= bounce_limit:
        subscriber.status = SubscriberStatus.bounced
        suppress(session, address=subscriber.email, reason=SuppressionReason.bounced, now=now)
        return Outcome.marked_bounced, f"marked bounced ({count} hard bounces: {reason})"
    if subscriber.status == SubscriberStatus.active:
        return Outcome.hard_bounce, f"hard bounce {count} ({reason})"
    # Unsubscribed stays unsubscribed (their choice outranks ours); bounced stays bounced.
    return Outcome.hard_bounce, f"hard bounce {count}, stays {subscriber.status.value} ({reason})"


def record_bounces(
    session: Session, *, report: BounceReport, now: datetime, bounce_limit: int, mail_domain: str
) -> list[Line]:
    """Count a bounce's permanent failure against the subscriber its message was sent to; once per bounce.

    The bounce must quote the Message-ID of one of our deliveries (sent, or uncertain) on
    ``mail_domain``: that names the subscriber, also when the address that failed is one the mail
    was forwarded to, and a forged bounce, which cannot know the id, counts for nothing.

    Returns a :class:`~pipeline.inbound.outcomes.Line` per address, its kind an ``Outcome`` and its
    text "hard bounce 1/2 (...)", "marked bounced (...)", "temporary failure (4.2.2 mailbox full)",
    "not counted: ..." with the reason, "permanent failure not counted: a policy or mailbox-full
    reply", or "already recorded" when this bounce was processed before. Temporary failures are
    reported, not counted. The caller commits.
    """
    if not report.is_bounce:
        return []
    permanent, temporary = sorted(report.permanent), sorted(report.temporary)
    if report.bounce_id is not None and not _claim_bounce(session, bounce_id=report.bounce_id, now=now):
        return [Line(address, Outcome.already_recorded, "already recorded") for address in permanent + temporary]
    lines = [Line(address, Outcome.temporary_failure, f"temporary failure ({report.reason_for(address)})")
             for address in temporary]
    if not permanent:
        return lines
    subscriber, why_not = _addressee(session, report.original_message_id, mail_domain)
    if subscriber is None:
        return [Line(address, Outcome.not_counted, f"not counted: {why_not}") for address in permanent] + lines
    countable = [a for a in permanent if counts_against_address(report.reason_for(a))]
    lines[:0] = [Line(a, Outcome.permanent_not_counted,
                      f"permanent failure not counted: a policy or mailbox-full reply ({report.reason_for(a)})")
                 for a in permanent if a not in countable]
    if countable:
        # One message, one recipient: the bounce counts once, however many addresses it lists.
        kind, what = _counted(session, subscriber, reason=report.reason_for(countable[0]), now=now,
                              bounce_limit=bounce_limit)
        forwarded = [a for a in countable if a != subscriber.email]
        if forwarded:
            what += f"; it failed at {', '.join(forwarded)}"
        lines.insert(0, Line(subscriber.email, kind, what))
        session.add(subscriber)
        session.flush()
    return lines


def _addressee(session: Session, message_id: str | None, mail_domain: str) -> tuple[Subscriber | None, str]:
    """The subscriber a bounced Message-ID was sent to, locked; or None and why not."""
    if message_id is None:
        return None, "the bounce does not say which message bounced"
    ref = read_message_id(message_id, domain=mail_domain)
    if ref is None:
        return None, f"<{message_id}> is not a message we sent"
    # Locked (PostgreSQL) so a concurrent send-time count on the same row is not lost.
    subscriber = session.exec(
        select(Subscriber)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)  # type: ignore[arg-type]
        .join(Issue, Issue.id == Delivery.issue_id)  # type: ignore[arg-type]
        .where(Subscriber.uid == ref.uid, Issue.date == ref.day, Issue.edition == ref.edition,
               col(Delivery.status).in_((DeliveryStatus.sent, DeliveryStatus.uncertain)))
        .with_for_update(of=Subscriber)
    ).first()
    if subscriber is None:
        return None, f"no delivery of ours has the id <{message_id}>"
    return subscriber, ""


def clear_bounces(session: Session, *, email: str, now: datetime | None = None) -> bool:
    """An operator vouches for an address: its count goes back to 0 and "bounced" back to "active".

    The last bounce's time and reason are kept for the record. False when the address is not a
    subscriber; SubscriberError when it is not an address at all.
    """
    address = normalize_email(email)
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == address).with_for_update()).first()
    if subscriber is None:
        return False
    subscriber.hard_bounces = 0
    if subscriber.status == SubscriberStatus.bounced:
        subscriber.status = SubscriberStatus.active
    # Lifts a bounce's suppression only: an unsubscribe or an erasure is the person's to undo.
    lift(session, address=address, now=now or utcnow(), by="operator clear-bounces", note="bounces cleared",
         only=SuppressionReason.bounced)
    subscriber.updated_at = now or utcnow()
    session.add(subscriber)
    session.flush()
    return True


class BounceCount(NamedTuple):
    hard_bounces: int
    status: SubscriberStatus


_MARK_SQL = text(
    "UPDATE subscriber SET hard_bounces = hard_bounces + 1, last_bounce_at = :now, last_bounce_reason = :reason, "
    "updated_at = :now, "
    "status = CASE WHEN hard_bounces + 1 >= :limit AND status = :active THEN :bounced ELSE status END "
    "WHERE id = :id RETURNING hard_bounces, status, email"
)


def mark_permanent_failure(
    session: Session | Connection, *, subscriber_id: int, reply: str, now: datetime, bounce_limit: int
) -> BounceCount | None:
    """Count a 5xx the receiving server gave while sending (RFC 5321: "550 5.1.1 no such user").

    One UPDATE and no ORM load, so a send batch can call it on its own connection between two
    messages; the caller commits. Returns the count and status after it, None for an unknown id.
    """
    row = session.execute(
        _MARK_SQL,
        {"now": db_time(now), "reason": clean_text(reply)[:REASON_LENGTH], "limit": bounce_limit,
         "active": SubscriberStatus.active.name, "bounced": SubscriberStatus.bounced.name, "id": subscriber_id},
    ).first()
    if row is None:
        return None
    if row[1] == SubscriberStatus.bounced.name:  # reached the limit now or before: idempotent either way
        suppress(session, address=row[2], reason=SuppressionReason.bounced, now=now)
    return BounceCount(row[0], SubscriberStatus[row[1]])
