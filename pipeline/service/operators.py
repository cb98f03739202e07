"""Operators' actions on an issue: pause, resume, resend, progress, and the reconciler's sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from pipeline.db.engine import session_scope
from pipeline.delivery import selections
from pipeline.delivery.ledger import (
    close_if_done,
    delivery_counts,
    pause_issue,
    plan_batches,
    recover_stale_claims,
    resume_issue,
    under_way,
)
from pipeline.delivery.resend import ResendPlan, plan_resend
from pipeline.delivery.resend import resend as resend_issue
from pipeline.errors import IssueError
from pipeline.models import Delivery, Edition, Issue, IssueStatus, Resend, ResendScope, Selection, utcnow
from pipeline.service.context import engine, journal_dir
from pipeline.service.daily import issue_for
from pipeline.settings import Settings


def pause(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily, reason: str) -> bool:
    """Stop an issue's sending (batches stop after the message in hand). False if it was not sending."""
    with Session(engine(settings)) as session:
        issue_id = issue_for(session, day, edition).id
    with engine(settings).connect() as conn:
        return pause_issue(conn, issue_id=issue_id, reason=reason)  # type: ignore[arg-type]


def resume(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily) -> bool:
    """Let a paused issue send again; the caller dispatches its open deliveries."""
    with Session(engine(settings)) as session:
        issue_id = issue_for(session, day, edition).id
    with engine(settings).connect() as conn:
        return resume_issue(conn, issue_id=issue_id)  # type: ignore[arg-type]


def resend(
    settings: Settings, *, day: dt.date, edition: Edition = Edition.daily, scope: ResendScope,
    addresses: Sequence[str] = (), reason: str, requested_by: str, dry_run: bool = False,
) -> tuple[Resend | None, ResendPlan]:
    """Record a resend and queue its deliveries (the caller dispatches), or only plan it with ``dry_run``."""
    try:
        with session_scope(engine(settings)) as session:
            issue = issue_for(session, day, edition)
            if dry_run:
                return None, plan_resend(session, issue=issue, scope=scope, addresses=addresses)
            record, plan = resend_issue(session, issue=issue, scope=scope, addresses=addresses, reason=reason,
                                        requested_by=requested_by, now=utcnow(), default_size=settings.digest_size)
            if record is not None:
                selections.assign(session, issue=issue, now=utcnow())  # for anyone new to this issue
            return record, plan
    except IntegrityError:
        raise IssueError("the same resend was submitted a moment ago; nothing more was queued") from None


@dataclass(frozen=True)
class Progress:
    """Where an issue's sending stands: its deliveries per state, how many are still open (pending,
    sending, retry), the send rate in messages/s and the time left at that rate (None when nothing is
    open or nothing was sent lately)."""

    issue: Issue
    counts: dict[str, int]
    open: int
    rate: float
    eta: dt.timedelta | None
    selections: int = 0  # distinct choices of papers among its deliveries
    personal_selections: int = 0  # of those, chosen by readers' interests or votes


def progress(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily,
             now: dt.datetime | None = None) -> Progress:
    """Counts per state, the send rate over the last minute and an estimate of the time left."""
    now = now or utcnow()
    with Session(engine(settings)) as session:
        issue = issue_for(session, day, edition)
        counts = delivery_counts(session, issue_id=issue.id)  # type: ignore[arg-type]
        recent = session.exec(select(func.count()).select_from(Delivery).where(
            Delivery.issue_id == issue.id, Delivery.sent_at >= now - dt.timedelta(minutes=1))).one()  # type: ignore[operator]
        kinds = session.exec(select(Selection.personal, func.count()).where(
            Selection.issue_id == issue.id, Selection.readers > 0).group_by(col(Selection.personal))).all()
    open_count = counts["pending"] + counts["sending"] + counts["retry"]
    # Over the last minute, or over the time since sending started when that is shorter.
    started = issue.send_started_at.replace(tzinfo=dt.UTC) if issue.send_started_at else now
    rate = recent / min(60.0, max(1.0, (now - started).total_seconds()))
    eta = dt.timedelta(seconds=round(open_count / rate)) if rate and open_count else None
    by_kind = dict(kinds)
    return Progress(issue=issue, counts=counts, open=open_count, rate=rate, eta=eta,
                    selections=sum(by_kind.values()), personal_selections=by_kind.get(True, 0))


def reconcile(settings: Settings, *, now: dt.datetime | None = None) -> list[tuple[int, list[tuple[int, int]]]]:
    """The periodic sweep: settle abandoned claims, close finished issues, and plan batches for every
    sending issue that has deliveries due. Returns (issue, batches).

    While a send is under way (a live claim, or ledger writes within LEASE_SECONDS) only retries that
    came due are planned: its own queued batches will reach the pending rows. But rows released from a
    dead sender's claim are planned at once, even then: that sender's task will not come back before
    the broker's visibility timeout (an hour), and a second task over rows someone else sends is
    harmless (claims are compare-and-set). An issue nobody works on (its tasks were lost with a
    broker's data, say) gets batches for all its open rows again.
    """
    now = now or utcnow()
    quiet = dt.timedelta(seconds=settings.lease_seconds)
    plans = []
    with session_scope(engine(settings)) as session:
        for issue in session.exec(select(Issue).where(Issue.status == IssueStatus.sending)).all():
            issue_id: int = issue.id  # type: ignore[assignment]
            _uncertain, released = recover_stale_claims(session, issue_id=issue_id, now=now,
                                                        journal_dir=journal_dir(settings))
            busy = under_way(session, issue_id=issue_id, now=now, quiet_for=quiet)
            batches = plan_batches(session, issue_id=issue_id, size=settings.send_batch_size, due_by=now,
                                   pending=released > 0 or not busy)
            if batches:
                plans.append((issue_id, batches))
            else:
                close_if_done(session, issue_id=issue_id, now=now)
    return plans
