"""The send loop: claim a few deliveries, send each over one connection, record each reply at once.

A batch works on a range of delivery ids, holds its claim under a lease it renews
at half-time, stops when the issue is paused, and pauses the issue itself after a
burst of failures in a row (bad credentials, a blocklisted IP). See
:mod:`pipeline.delivery.ledger` for the states a row goes through.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from pipeline.audience.bounces import mark_permanent_failure
from pipeline.audience.subscribers import UnsendableAddress
from pipeline.compose.message import MessageTemplate
from pipeline.delivery.ledger import (
    RECORD_SQL,
    Claimed,
    claim_rows,
    fast_commits,
    outcome_row,
    pause_issue,
    paused_reason,
    recover_stale_claims,
    settle_unfinished,
    subscribers_at_send,
)
from pipeline.delivery.messengers import Messenger, SendResult
from pipeline.delivery.pacing import Pacer
from pipeline.delivery.personalize import RecipientFactory, SendContext, TemplateCache
from pipeline.errors import DeliveryError, IssueError, LeaseLost
from pipeline.inbound.bounce_reports import counts_against_address
from pipeline.models import DeliveryStatus, Issue, db_time, utcnow


@dataclass(slots=True)
class BatchResult:
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    uncertain: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    failures_in_a_row: int = 0
    paused: str | None = None  # why the batch stopped early because the issue is paused


def send_batch(
    engine: Engine,
    *,
    issue_id: int,
    after_id: int,
    upto_id: int,
    messenger: Messenger,
    ctx: SendContext,
    clock: Callable[[], datetime] = utcnow,
    pacer: Pacer | None = None,
) -> BatchResult:
    """Send the open deliveries with ids in ``(after_id, upto_id]``; safe to run twice or concurrently."""
    result = BatchResult()
    with Session(engine, expire_on_commit=False) as session:
        issue = session.get(Issue, issue_id)
        if issue is None:
            raise IssueError(f"no issue with id {issue_id}")
        recover_stale_claims(session, issue_id=issue_id, now=clock())
        session.commit()
    templates = TemplateCache(engine, issue, ctx)
    make_recipient = RecipientFactory(issue, ctx)
    claim = secrets.token_hex(8)
    cursor = after_id
    with engine.connect() as conn, fast_commits(conn):
        while True:
            now = clock()
            result.paused = paused_reason(conn, issue_id)
            if result.paused is not None:
                break  # paused by an operator or a burst of failures: leave the rest pending
            rows = claim_rows(conn, issue_id=issue_id, after=cursor, upto=upto_id, limit=ctx.claim_size,
                          claim=claim, now=now, lease_until=now + timedelta(seconds=ctx.lease_seconds))
            if not rows:
                break
            cursor = rows[-1].id
            lease = _Lease(conn, claim=claim, seconds=ctx.lease_seconds, clock=clock, start=now)
            _send_claimed(conn, rows, claim=claim, lease=lease, templates=templates, make_recipient=make_recipient,
                          messenger=messenger, ctx=ctx, clock=clock, result=result, pacer=pacer)
    return result


class _Lease:
    """A claim's lease, renewed at half-time so a slow server never lets it lapse mid-claim."""

    def __init__(self, conn: Connection, *, claim: str, seconds: int, clock: Callable[[], datetime],
                 start: datetime) -> None:
        self._conn, self._claim, self._seconds, self._clock = conn, claim, seconds, clock
        self._renew_at = start + timedelta(seconds=seconds / 2)

    def keep(self, still_held: int) -> None:
        """Renew if due; raise if a recoverer took rows of this claim away (sending them would duplicate)."""
        now = self._clock()
        if now < self._renew_at:
            return
        renewed = self._conn.execute(
            text("UPDATE delivery SET lease_until = :until WHERE claim = :claim AND status = :sending"),
            {"until": db_time(now + timedelta(seconds=self._seconds)), "claim": self._claim,
             "sending": DeliveryStatus.sending.name},
        ).rowcount
        self._conn.commit()
        if renewed < still_held:
            raise LeaseLost(f"claim {self._claim} lost {still_held - renewed} deliveries to lease recovery")
        self._renew_at = now + timedelta(seconds=self._seconds / 2)


class _Burst(Exception):
    """Too many failures in a row: something is wrong with the server or the account, not the addresses."""


def _send_claimed(conn: Connection, rows: list[Claimed], *, claim: str, lease: _Lease,
                  templates: TemplateCache, make_recipient: RecipientFactory, messenger: Messenger,
                  ctx: SendContext, clock: Callable[[], datetime], result: BatchResult,
                  pacer: Pacer | None = None) -> None:
    subscribers = subscribers_at_send(conn, [row.subscriber_id for row in rows])
    done = 0
    try:
        for row in rows:
            if pacer is not None and subscribers[row.subscriber_id][2] is None:
                # A long wait under the hourly limit keeps the lease alive, or another sender would take the rows.
                held = len(rows) - done
                pacer.wait(between=lambda held=held: lease.keep(still_held=held))  # type: ignore[misc]
            lease.keep(still_held=len(rows) - done)
            outcome = _send_one(conn, row, subscribers[row.subscriber_id], claim=claim,
                                template=templates(row.size), make_recipient=make_recipient, messenger=messenger,
                                ctx=ctx, now=clock(), result=result)
            done += 1
            if outcome == "sent":
                result.failures_in_a_row = 0
            elif outcome != "skipped":
                result.failures_in_a_row += 1
                if result.failures_in_a_row >= ctx.failure_burst_limit:
                    raise _Burst(f"{result.failures_in_a_row} sends failed in a row; last: {result.errors[-1]}")
    except LeaseLost:
        raise  # the rows are someone else's now: touch nothing
    except _Burst as burst:
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        pause_issue(conn, issue_id=templates.issue_id, reason=str(burst))
    except DeliveryError as exc:
        # The server could not be reached: nothing of the rest was transmitted.
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        if exc.lasting:  # bad credentials will not fix themselves: stop the issue instead of burning retries
            pause_issue(conn, issue_id=templates.issue_id, reason=str(exc))
        raise
    except BaseException:
        # Interrupted (signal, shutdown): the current message may have gone out.
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=True, now=clock())
        raise


def _send_one(conn: Connection, row: Claimed, subscriber: tuple[str, str, str | None], *, claim: str,
              template: MessageTemplate, make_recipient: RecipientFactory, messenger: Messenger,
              ctx: SendContext, now: datetime, result: BatchResult) -> str:
    email, uid, skip_reason = subscriber
    message_id = None
    if skip_reason:
        # Unsubscribing or pausing takes effect at once, even for a batch already queued.
        values: dict[str, object] = {"status": DeliveryStatus.skipped.name, "reply": None,
                                     "error": skip_reason, "sent_at": None, "next_at": None}
        outcome = "skipped"
    else:
        try:
            recipient = make_recipient(email, uid, row.resend_id)
        except UnsendableAddress as exc:
            # This one address, not the batch: nothing was sent, and it is no bounce either.
            sent = SendResult("permanent", None, f"not sent: {exc}"[:1000])
        else:
            message_id = recipient.message_id
            sent = messenger.send(sender=ctx.envelope_from, template=template, recipient=recipient)
        values = outcome_row(sent, attempts=row.attempts, now=now, ctx=ctx)
        outcome = sent.outcome
        if outcome != "sent":
            result.errors.append(f"{email}: {sent.reply}")
    setattr(result, outcome, getattr(result, outcome) + 1)
    # Recorded right after the reply, before the next message: progress is what was sent.
    conn.execute(RECORD_SQL, {**values, "message_id": message_id, "now": db_time(now), "id": row.id,
                               "claim": claim})
    if outcome == "permanent" and sent.code is not None and counts_against_address(sent.reply):
        # After the delivery's own record: on PostgreSQL each statement commits by itself, and a crash
        # between the two can at worst miss one count, never count a bounce twice on a retry.
        mark_permanent_failure(conn, subscriber_id=row.subscriber_id, reply=sent.reply, now=now,
                               bounce_limit=ctx.bounce_limit)
    conn.commit()
    return outcome


