"""The send loop: claim a few deliveries, send each over one connection, journal each reply at once and
write the replies to the ledger in bulk.

A batch works on a range of delivery ids, holds its claim under a lease it renews
at half-time, stops when the issue is paused, and pauses the issue itself after a
burst of failures in a row (bad credentials, a blocklisted IP). See
:mod:`pipeline.delivery.ledger` for the states a row goes through and
:mod:`pipeline.delivery.journal` for what a crash between a reply and its ledger
write leaves.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter

from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from pipeline.audience.bounces import mark_permanent_failure
from pipeline.audience.subscribers import UnsendableAddress, sendable_address
from pipeline.compose.message import Recipient
from pipeline.delivery.journal import Journal, Record, new_claim
from pipeline.delivery.ledger import (
    Claimed,
    claim_rows,
    fast_commits,
    outcome_row,
    pause_issue,
    paused_reason,
    record_results,
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

# Where a batch's time goes: claiming rows (and reading their subscribers), building each copy (links,
# Message-ID, the bytes), the SMTP exchange, and writing results to the ledger (journal included).
STAGES = ("claim", "build", "smtp", "ledger")


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
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


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
        recover_stale_claims(session, issue_id=issue_id, now=clock(), journal_dir=ctx.journal_dir)
        session.commit()
    templates = TemplateCache(engine, issue, ctx)
    make_recipient = RecipientFactory(issue, ctx)
    claim = new_claim(secrets.token_hex(8), ctx.ledger_write_every)
    journal = Journal(ctx.journal_dir, claim)
    cursor = after_id
    seconds = result.seconds
    try:
        with engine.connect() as conn, fast_commits(conn):
            while True:
                started = perf_counter()
                now = clock()
                result.paused = paused_reason(conn, issue_id)
                if result.paused is not None:
                    break  # paused by an operator or a burst of failures: leave the rest pending
                rows = claim_rows(conn, issue_id=issue_id, after=cursor, upto=upto_id, limit=ctx.claim_size,
                                  claim=claim, now=now, lease_until=now + timedelta(seconds=ctx.lease_seconds))
                seconds["claim"] += perf_counter() - started
                if not rows:
                    break
                cursor = rows[-1].id
                lease = _Lease(conn, claim=claim, seconds=ctx.lease_seconds, clock=clock, start=now)
                recorder = _Recorder(conn, journal, ctx=ctx, seconds=seconds)
                _send_claimed(conn, rows, claim=claim, lease=lease, recorder=recorder, templates=templates,
                              make_recipient=make_recipient, messenger=messenger, ctx=ctx, clock=clock,
                              result=result, pacer=pacer)
    finally:
        journal.close()
    return result


class _Recorder:
    """One claim's results: each journaled before the next send, written to the ledger in bulk."""

    def __init__(self, conn: Connection, journal: Journal, *, ctx: SendContext, seconds: dict[str, float]) -> None:
        self._conn, self._journal, self._ctx, self._seconds = conn, journal, ctx, seconds
        self._pending: list[Record] = []
        self._bounces: list[tuple[int, str, datetime]] = []
        self._due = perf_counter() + ctx.ledger_write_seconds
        self.written = 0  # rows of the claim the ledger has

    def add(self, record: Record, *, bounce: tuple[int, str, datetime] | None = None) -> None:
        started = perf_counter()
        self._journal.append(record)
        self._pending.append(record)
        if bounce is not None:
            self._bounces.append(bounce)
        self._seconds["ledger"] += perf_counter() - started
        if len(self._pending) >= self._ctx.ledger_write_every or started >= self._due:
            self.write()

    def write(self) -> None:
        started = perf_counter()
        if self._pending:
            record_results(self._conn, self._pending)
            for subscriber_id, reply, now in self._bounces:
                # After the delivery's own record: a crash between the two can at worst miss one count,
                # never count a bounce twice on a retry.
                mark_permanent_failure(self._conn, subscriber_id=subscriber_id, reply=reply, now=now,
                                       bounce_limit=self._ctx.bounce_limit)
            self._conn.commit()
            self._journal.written()
            self.written += len(self._pending)
            self._pending.clear()
            self._bounces.clear()
        self._due = perf_counter() + self._ctx.ledger_write_seconds
        self._seconds["ledger"] += perf_counter() - started

    def write_quietly(self) -> None:
        """The replies so far, on the way out of a failed batch; if the database is what failed, the journal
        keeps them for whoever recovers the lease."""
        try:
            self._conn.rollback()
            self.write()
        except Exception:  # noqa: BLE001 - the original error matters more
            pass


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


def _send_claimed(conn: Connection, rows: list[Claimed], *, claim: str, lease: _Lease, recorder: _Recorder,
                  templates: TemplateCache, make_recipient: RecipientFactory, messenger: Messenger,
                  ctx: SendContext, clock: Callable[[], datetime], result: BatchResult,
                  pacer: Pacer | None = None) -> None:
    started = perf_counter()
    subscribers = subscribers_at_send(conn, [row.subscriber_id for row in rows])
    templates.prefetch(row.selection_id for row in rows)
    result.seconds["claim"] += perf_counter() - started
    done = 0
    ahead = _Ahead(rows, subscribers, templates=templates, make_recipient=make_recipient, messenger=messenger)
    try:
        for i, row in enumerate(rows):
            if pacer is not None and subscribers[row.subscriber_id][2] is None:
                # A long wait under the hourly limit keeps the lease alive, or another sender would take the rows.
                held = len(rows) - recorder.written
                pacer.wait(between=lambda held=held: lease.keep(still_held=held))  # type: ignore[misc]
            lease.keep(still_held=len(rows) - recorder.written)
            # Unpaced, the next message's envelope travels with this one (RFC 2920), and its bytes are built
            # while the server reads this one: one round trip per message, and no idle server while we build.
            following = i + 1 if pacer is None and i + 1 < len(rows) else None
            outcome = _send_one(row, subscribers[row.subscriber_id], claim=claim, recorder=recorder, ahead=ahead,
                                index=i, following=following, messenger=messenger, ctx=ctx, now=clock(),
                                result=result)
            done += 1
            if outcome == "sent":
                result.failures_in_a_row = 0
            elif outcome != "skipped":
                result.failures_in_a_row += 1
                if result.failures_in_a_row >= ctx.failure_burst_limit:
                    raise _Burst(f"{result.failures_in_a_row} sends failed in a row; last: {result.errors[-1]}")
        recorder.write()
    except LeaseLost:
        raise  # the rows are someone else's now: touch nothing (the recoverer folded this claim's journal)
    except _Burst as burst:
        recorder.write()
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        pause_issue(conn, issue_id=templates.issue_id, reason=str(burst))
    except DeliveryError as exc:
        # The server could not be reached: nothing of the rest was transmitted.
        recorder.write_quietly()
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        if exc.lasting:  # bad credentials will not fix themselves: stop the issue instead of burning retries
            pause_issue(conn, issue_id=templates.issue_id, reason=str(exc))
        raise
    except BaseException:
        # Interrupted (signal, shutdown): the current message may have gone out.
        recorder.write_quietly()
        settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=True, now=clock())
        raise


class _Ahead:
    """Each message of a claim built once: the recipient's values and the bytes the messenger will send,
    made while the server is reading the message before it, or when its turn comes."""

    def __init__(self, rows: list[Claimed], subscribers: dict[int, tuple[str, str, str | None]], *,
                 templates: TemplateCache, make_recipient: RecipientFactory, messenger: Messenger) -> None:
        self._rows, self._subscribers = rows, subscribers
        self._templates, self._make, self._messenger = templates, make_recipient, messenger
        self._built: dict[int, tuple[Recipient, bytes] | Exception] = {}
        self.seconds = 0.0  # spent building

    def address(self, index: int) -> str | None:
        """Where message ``index`` goes (cheap: the message is not built), or None when it will not be sent."""
        email, _uid, skip_reason = self._subscribers[self._rows[index].subscriber_id]
        if skip_reason:
            return None
        try:
            return sendable_address(email)  # what the recipient factory will give
        except UnsendableAddress:
            return None

    def build(self, index: int) -> tuple[Recipient, bytes] | Exception | None:
        """Message ``index`` as (recipient, bytes), the error that keeps it from being built, or None if skipped."""
        row = self._rows[index]
        email, uid, skip_reason = self._subscribers[row.subscriber_id]
        if skip_reason:
            return None
        built = self._built.get(index)
        if built is None:
            started = perf_counter()
            try:
                recipient = self._make(email, uid, row.resend_id)
                built = (recipient, self._messenger.wire_for(self._templates(row.size, row.selection_id), recipient))
            except Exception as exc:  # noqa: BLE001 - kept for its own turn, never blamed on the message in flight
                built = exc
            self._built[index] = built
            self.seconds += perf_counter() - started
        return built

    def take(self, index: int) -> tuple[Recipient, bytes] | Exception | None:
        built = self.build(index)
        self._built.pop(index, None)
        return built


def result_record(values: Record, *, row_id: int, claim: str, message_id: str | None, now_text: str) -> Record:
    """A ledger record (journal line) for one delivery: see :func:`pipeline.delivery.ledger.record_results`."""
    return {**values, "message_id": message_id, "now": now_text, "id": row_id, "claim": claim}


def _send_one(row: Claimed, subscriber: tuple[str, str, str | None], *, claim: str, recorder: _Recorder,
              ahead: _Ahead, index: int, following: int | None, messenger: Messenger, ctx: SendContext,
              now: datetime, result: BatchResult) -> str:
    email, _uid, skip_reason = subscriber
    message_id = None
    bounce = None
    now_text = db_time(now).isoformat()
    if skip_reason:
        # Unsubscribing or pausing takes effect at once, even for a batch already queued.
        values: Record = {"status": DeliveryStatus.skipped.name, "reply": None,
                          "error": skip_reason, "sent_at": None, "next_at": None}
        outcome = "skipped"
    else:
        building = ahead.seconds
        built = ahead.take(index)
        if isinstance(built, UnsendableAddress):
            # This one address, not the batch: nothing was sent, and it is no bounce either.
            sent = SendResult("permanent", None, f"not sent: {built}"[:1000])
        elif isinstance(built, Exception):
            raise built
        else:
            recipient, wire = built  # type: ignore[misc]
            message_id = recipient.message_id
            next_rcpt = ahead.address(following) if following is not None else None
            started = perf_counter()
            before = ahead.seconds
            sent = messenger.send(sender=ctx.envelope_from, recipient=recipient, wire=wire, next_rcpt=next_rcpt,
                                  meanwhile=(lambda: ahead.build(following)) if following is not None else None)
            result.seconds["smtp"] += perf_counter() - started - (ahead.seconds - before)
        result.seconds["build"] += ahead.seconds - building
        values = outcome_row(sent, attempts=row.attempts, now=now, ctx=ctx, now_text=now_text)
        outcome = sent.outcome
        if outcome != "sent":
            result.errors.append(f"{email}: {sent.reply}")
        if outcome == "permanent" and sent.code is not None and counts_against_address(sent.reply):
            bounce = (row.subscriber_id, sent.reply, now)
    setattr(result, outcome, getattr(result, outcome) + 1)
    # Journaled before the next message goes out; in the ledger with the next bulk write.
    recorder.add(result_record(values, row_id=row.id, claim=claim, message_id=message_id, now_text=now_text),
                 bounce=bounce)
    return outcome
