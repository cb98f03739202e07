"""Operators' resends: send an issue again to the failed, to named addresses, or to everyone.

A resend is recorded (when, scope, why, by whom) before anything is queued, and
it only moves deliveries back to ``pending``: the ordinary batches do the
sending, with the same ledger guarantees. It never reaches an address that is
unsubscribed, bounced, unconfirmed or on the suppression list, and it leaves alone deliveries that are
already queued. Submitting the same resend twice queues nothing the second
time: its targets are no longer in a resendable state, and a request racing
the first one carries the same key, which the database accepts once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from pipeline.audience.subscribers import normalize_email
from pipeline.audience.suppression import address_hash, suppressed_hashes
from pipeline.errors import IssueError
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

# Which deliveries each status scope takes. Uncertain ones are a scope of their own: they may well have
# arrived (the connection dropped after the final "."), so resending them is a separate, deliberate choice.
STATUS_SCOPES = {ResendScope.failed: DeliveryStatus.failed, ResendScope.uncertain: DeliveryStatus.uncertain}
QUEUED = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retry)


@dataclass(slots=True)
class ResendPlan:
    """Who a resend would reach, and who it leaves out and why."""

    targets: list[tuple[Delivery | None, Subscriber]] = field(default_factory=list)  # None: not in the snapshot
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [sub.email for _, sub in self.targets]


def plan_resend(session: Session, *, issue: Issue, scope: ResendScope, addresses: Sequence[str] = ()) -> ResendPlan:
    """Work out a resend without changing anything (``--dry-run`` prints this)."""
    if scope is ResendScope.to and not addresses:
        raise IssueError("name at least one address to resend to")
    plan = ResendPlan()
    rows = session.exec(
        select(Delivery, Subscriber).where(Delivery.issue_id == issue.id, Delivery.subscriber_id == Subscriber.id)
        .order_by(col(Delivery.id))
    ).all()
    by_email = {sub.email: (delivery, sub) for delivery, sub in rows}
    candidates: list[tuple[Delivery | None, Subscriber]]
    if scope is ResendScope.to:
        candidates = []
        for raw in addresses:
            email = normalize_email(raw)
            if email in by_email:
                candidates.append(by_email[email])
                continue
            sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
            if sub is None:
                plan.skipped.append((email, "not a subscriber"))
            else:
                candidates.append((None, sub))  # joined after the issue went out: gets a delivery now
    elif scope in STATUS_SCOPES:
        candidates = [(d, s) for d, s in rows if d.status is STATUS_SCOPES[scope]]
    else:
        candidates = [(d, s) for d, s in rows]
    suppressed = suppressed_hashes(session)
    for delivery, sub in candidates:
        if sub.status is not SubscriberStatus.active:
            plan.skipped.append((sub.email, f"subscriber is {sub.status.value}"))
        elif address_hash(sub.email) in suppressed:
            plan.skipped.append((sub.email, "on the suppression list"))
        elif delivery is not None and delivery.status in QUEUED:
            plan.skipped.append((sub.email, "already queued"))
        else:
            plan.targets.append((delivery, sub))
    return plan


def _key(issue: Issue, scope: ResendScope, plan: ResendPlan) -> str:
    """The same request over the same deliveries in the same state gives the same key."""
    parts = [str(issue.id), scope.value] + sorted(
        f"{sub.id}:{d.status.value if d else 'new'}:{d.attempts if d else 0}" for d, sub in plan.targets
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def resend(
    session: Session,
    *,
    issue: Issue,
    scope: ResendScope,
    addresses: Sequence[str] = (),
    reason: str,
    requested_by: str,
    now: dt.datetime,
    default_size: int,
) -> tuple[Resend | None, ResendPlan]:
    """Record the resend and queue its deliveries again. Returns (None, plan) when there is nothing to send.

    The caller commits, then dispatches the issue as usual. An IntegrityError on
    commit means the identical resend was just recorded by someone else.
    """
    if not reason.strip():
        raise IssueError("say why (--reason): every resend is recorded with its reason")
    if issue.send_started_at is None:
        raise IssueError(f"the issue of {issue.date} has not been sent yet: send it instead of resending")
    plan = plan_resend(session, issue=issue, scope=scope, addresses=addresses)
    if not plan.targets:
        return None, plan
    assert issue.id is not None  # an issue that has been sent is stored
    record = Resend(issue_id=issue.id, key=_key(issue, scope, plan), scope=scope, reason=reason.strip()[:500],
                    addresses=list(addresses), requested_by=requested_by[:100], requested_at=now,
                    deliveries=len(plan.targets))
    session.add(record)
    session.flush()
    for delivery, sub in plan.targets:
        delivery = delivery or Delivery(issue_id=issue.id, subscriber_id=sub.id,  # type: ignore[arg-type]
                                        size=sub.digest_size or default_size)
        delivery.status = DeliveryStatus.pending
        delivery.attempts = 0
        delivery.next_attempt_at = delivery.lease_until = delivery.claim = None
        delivery.last_error = None
        delivery.resend_id = record.id
        delivery.updated_at = now
        session.add(delivery)
    if issue.status is IssueStatus.finished:
        issue.status, issue.finished_at = IssueStatus.sending, None
        session.add(issue)
    session.flush()
    return record, plan


def history(session: Session, *, issue: Issue) -> list[Resend]:
    return list(session.exec(select(Resend).where(Resend.issue_id == issue.id).order_by(col(Resend.id))))
