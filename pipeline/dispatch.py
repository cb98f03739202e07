"""The delivery ledger: one row per issue × subscriber, the source of truth for sending.

Lifecycle of a delivery row::

    pending ──claim──▶ sending ──2xx──▶ sent
       ▲                  │ ├──4xx / connection lost──▶ retry ──(due)──▶ claimed again
       │                  │ ├──5xx──▶ failed (reply kept)
       │                  │ ├──lost after the final "."──▶ uncertain
       │                  │ └──subscriber no longer active──▶ skipped
       └──stale claim, not yet tried──┘

A batch claims a few rows at a time with one compare-and-set UPDATE (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), sends them in
id order over one connection, and records each result right after the
server's reply. So if the sender dies, the rows still "sending" under its
claim are a suffix in id order: the first of them may have been in flight
and becomes ``uncertain`` (never re-sent automatically: a duplicate is worse
than asking an operator); the rest were never tried and go back to pending.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Engine, bindparam, text
from sqlmodel import Session, func, select

from pipeline.bounce_reports import counts_against_address
from pipeline.bounces import mark_permanent_failure
from pipeline.errors import DeliveryError
from pipeline.message import MessageTemplate, Recipient
from pipeline.message_ids import make_message_id
from pipeline.messengers import Messenger, SendResult
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Edition,
    Frequency,
    Issue,
    IssueStatus,
    IssueVariant,
    SubscriberStatus,
    utcnow,
)
from pipeline.pacing import Pacer
from pipeline.subscribers import UnsendableAddress, sendable_address
from pipeline.tokens import Purpose, Signer

OPEN_STATUSES = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retry)


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a batch needs besides the database; built from settings at the edge."""

    envelope_from: str
    sender_header: object  # email.headerregistry.Address for the From header
    list_id: str
    list_name: str
    base_url: str
    mail_domain: str
    unsubscribe_mailbox: str
    secret_key: str
    claim_size: int = 50
    lease_seconds: int = 300
    retry_base_seconds: int = 300
    max_attempts: int = 8
    failure_burst_limit: int = 50  # this many failures in a row pause the issue (bad credentials, a blocklist)
    bounce_limit: int = 2  # hard bounces (5xx about the address) before it is marked bounced


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


def _db_time(moment: datetime) -> datetime:
    """Text SQL binds naive UTC, as the UTCDateTime columns store it."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def archive_url(base_url: str, day: object, edition: Edition = Edition.daily) -> str:
    """Where an issue is shown on the site ("view in browser")."""
    return f"{base_url}/issues/{day}" + ("/weekly" if edition is Edition.weekly else "")


def build_template(issue: Issue, ctx: SendContext, variant: IssueVariant | None = None) -> MessageTemplate:
    rendered = variant or issue
    return MessageTemplate.build(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        sender=ctx.sender_header,  # type: ignore[arg-type]
        list_id=ctx.list_id,
        list_name=ctx.list_name,
        archive_url=archive_url(ctx.base_url, issue.date, issue.edition),
        date=issue.send_started_at or utcnow(),
    )


class TemplateCache:
    """One encoded message per size the recipients chose, built on first use by this batch."""

    def __init__(self, engine: Engine, issue: Issue, ctx: SendContext) -> None:
        self._engine, self._issue, self._ctx = engine, issue, ctx
        self._built: dict[int, MessageTemplate] = {}
        self.issue_id: int = issue.id  # type: ignore[assignment]

    def __call__(self, size: int) -> MessageTemplate:
        template = self._built.get(size)
        if template is None:
            variant = None
            if size != self._issue.size:
                with Session(self._engine) as session:
                    variant = session.exec(select(IssueVariant).where(
                        IssueVariant.issue_id == self._issue.id, IssueVariant.size == size)).first()
            # A size without its rendering (it cannot happen through start_sending) gets the default.
            template = self._built[size] = build_template(self._issue, self._ctx, variant)
        return template


class RecipientFactory:
    """Per-subscriber values: address, Message-ID and signed links."""

    def __init__(self, issue: Issue, ctx: SendContext) -> None:
        self._day, self._edition = issue.date, issue.edition
        self._ctx = ctx
        self._unsubscribe = Signer(ctx.secret_key, Purpose.unsubscribe)
        self._preferences = Signer(ctx.secret_key, Purpose.preferences)

    def __call__(self, email: str, uid: str, resend_id: int | None = None) -> Recipient:
        """UnsendableAddress for an address that cannot be written into a message."""
        ctx = self._ctx
        unsub = self._unsubscribe.sign(uid)
        return Recipient(
            address=sendable_address(email),
            message_id=make_message_id(day=self._day, edition=self._edition, uid=uid, resend_id=resend_id,
                                       domain=ctx.mail_domain),
            unsubscribe_url=f"{ctx.base_url}/u/{unsub}",
            unsubscribe_mailto=f"{ctx.unsubscribe_mailbox}?subject=unsubscribe%20{unsub}",
            preferences_url=f"{ctx.base_url}/p/{self._preferences.sign(uid)}",
        )


def open_deliveries(session: Session, *, issue: Issue, now: datetime, default_size: int) -> int:
    """Snapshot the recipients once: a row per subscriber who wants this edition. Later runs add nobody.

    Daily editions go to active, unpaused daily subscribers; weekly editions to
    active, unpaused weekly subscribers whose weekday is the day it is sent
    (the day after the issue's date). Each row keeps the subscriber's size.
    Returns how many rows were created (0 when sending had already started).
    """
    started = session.execute(
        text("UPDATE issue SET send_started_at = :now, status = :sending WHERE id = :id AND send_started_at IS NULL"),
        {"now": _db_time(now), "sending": IssueStatus.sending.name, "id": issue.id},
    )
    if started.rowcount != 1:  # type: ignore[attr-defined]
        return 0
    weekly = issue.edition is Edition.weekly
    created = session.execute(
        text(
            "INSERT INTO delivery (issue_id, subscriber_id, size, status, attempts, updated_at) "
            "SELECT :issue, id, COALESCE(digest_size, :default_size), :pending, 0, :now FROM subscriber "
            "WHERE status = :active AND NOT paused AND frequency = :frequency"
            + (" AND weekday = :weekday" if weekly else "")
            + " ON CONFLICT (issue_id, subscriber_id) DO NOTHING"
        ),
        {"issue": issue.id, "pending": DeliveryStatus.pending.name, "now": _db_time(now),
         "active": SubscriberStatus.active.name, "default_size": default_size,
         "frequency": (Frequency.weekly if weekly else Frequency.daily).name,
         "weekday": (issue.date + timedelta(days=1)).weekday()},
    )
    session.refresh(issue)
    return created.rowcount  # type: ignore[attr-defined]


def plan_batches(session: Session, *, issue_id: int, size: int, due_by: datetime | None = None,
                 pending: bool = True) -> list[tuple[int, int]]:
    """Delivery-id ranges ``(after, upto]`` covering the issue's open rows, ``size`` ids each.

    With ``due_by``, only the rows a batch would send by then: retries due by then, and pending
    rows unless ``pending`` is false.
    """
    if due_by is None:
        which = Delivery.status.in_(OPEN_STATUSES)  # type: ignore[attr-defined]
    else:
        which = (Delivery.status == DeliveryStatus.retry) & (Delivery.next_attempt_at <= due_by)  # type: ignore[operator]
        if pending:
            which = which | (Delivery.status == DeliveryStatus.pending)
    low, high = session.exec(
        select(func.min(Delivery.id), func.max(Delivery.id)).where(Delivery.issue_id == issue_id, which)
    ).one()
    if low is None:
        return []
    return [(after, min(after + size, high)) for after in range(low - 1, high, size)]


def under_way(session: Session, *, issue_id: int, now: datetime, quiet_for: timedelta) -> bool:
    """Whether some sender is working on the issue: it holds a live claim, or it wrote to the
    ledger within ``quiet_for``. Its queued batches will reach the pending rows."""
    live = session.exec(select(Delivery.id).where(
        Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.sending,
        Delivery.lease_until > now,  # type: ignore[operator]
    ).limit(1)).first()
    if live is not None:
        return True
    latest = session.exec(select(func.max(Delivery.updated_at)).where(Delivery.issue_id == issue_id)).one()
    return latest is not None and latest.replace(tzinfo=UTC) > now - quiet_for


def recover_stale_claims(session: Session, *, issue_id: int, now: datetime) -> tuple[int, int]:
    """Settle rows left "sending" by a sender whose lease ran out. Returns (uncertain, released)."""
    rows = session.execute(
        text(
            "SELECT id, claim FROM delivery WHERE issue_id = :issue AND status = :sending "
            "AND lease_until < :now ORDER BY id"
        ),
        {"issue": issue_id, "sending": DeliveryStatus.sending.name, "now": _db_time(now)},
    ).all()
    seen: set[str | None] = set()
    uncertain = released = 0
    for row_id, claim in rows:
        first = claim not in seen
        seen.add(claim)
        if first:
            status, error = DeliveryStatus.uncertain, "the sender stopped while this message may have been in flight"
        else:
            status, error = DeliveryStatus.pending, None
        changed = session.execute(
            text(
                "UPDATE delivery SET status = :status, claim = NULL, lease_until = NULL, "
                "last_error = COALESCE(:error, last_error), updated_at = :now, "
                "attempts = CASE WHEN :release AND attempts > 0 THEN attempts - 1 ELSE attempts END "
                "WHERE id = :id AND status = :sending AND claim = :claim"
            ),
            {"status": status.name, "error": error, "release": not first, "now": _db_time(now), "id": row_id,
             "sending": DeliveryStatus.sending.name, "claim": claim},
        ).rowcount  # type: ignore[attr-defined]
        if changed:
            uncertain += first
            released += not first
    return uncertain, released


class Claimed(NamedTuple):
    """A delivery row this batch holds under its lease."""

    id: int
    subscriber_id: int
    attempts: int
    size: int
    resend_id: int | None  # set when an operator's resend queued it again: the copy gets its own Message-ID


_CLAIM_SQL = (
    "UPDATE delivery SET status = :sending, claim = :claim, lease_until = :lease, "
    "attempts = attempts + 1, updated_at = :now "
    "WHERE id IN (SELECT id FROM delivery WHERE issue_id = :issue AND id > :after AND id <= :upto "
    "AND (status = :pending OR (status = :retry AND next_attempt_at <= :now)) "
    "ORDER BY id LIMIT :limit{lock}) "
    "AND status IN (:pending, :retry) "
    "RETURNING id, subscriber_id, attempts, size, resend_id"
)

_RECORD_SQL = text(
    "UPDATE delivery SET status = :status, smtp_reply = :reply, last_error = :error, "
    "message_id = COALESCE(:message_id, message_id), sent_at = COALESCE(:sent_at, sent_at), "
    "next_attempt_at = :next_at, claim = NULL, lease_until = NULL, updated_at = :now "
    "WHERE id = :id AND claim = :claim"
)


@contextmanager
def _fast_commits(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, don't wait for the WAL flush on each ledger commit, and commit each statement by itself.

    A dying worker loses nothing this way (its commits are in the server); only a
    crash of the database server itself can lose the last fraction of a second of
    ledger writes. Without it every message costs a disk flush.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql("SET synchronous_commit TO OFF")
    conn.commit()
    # Each ledger statement stands alone (one UPDATE per reply): autocommit saves a COMMIT round trip each.
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql("RESET synchronous_commit")
        conn.commit()


def _claim(conn: Connection, *, issue_id: int, after: int, upto: int, limit: int, claim: str,
           now: datetime, lease_until: datetime) -> list[Claimed]:
    lock = " FOR UPDATE SKIP LOCKED" if conn.dialect.name == "postgresql" else ""
    rows = conn.execute(
        text(_CLAIM_SQL.format(lock=lock)),
        {"sending": DeliveryStatus.sending.name, "claim": claim, "lease": _db_time(lease_until),
         "now": _db_time(now), "issue": issue_id, "after": after, "upto": upto, "limit": limit,
         "pending": DeliveryStatus.pending.name, "retry": DeliveryStatus.retry.name},
    ).all()
    conn.commit()
    return sorted(Claimed(*r) for r in rows)


def _subscribers(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    """(email, uid, why not to send or None) per subscriber id, read at send time."""
    stmt = text("SELECT id, email, uid, status, paused FROM subscriber WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    out: dict[int, tuple[str, str, str | None]] = {}
    for row_id, email, uid, status, paused in conn.execute(stmt, {"ids": ids}):
        reason = f"subscriber is {status}" if status != SubscriberStatus.active.name else None
        out[row_id] = (email, uid, reason or ("subscriber paused" if paused else None))
    return out


def _retry_at(now: datetime, attempts: int, ctx: SendContext) -> datetime:
    # Exponential backoff with jitter so a recovering server is not hit by every retry at once.
    delay = min(ctx.retry_base_seconds * 2 ** max(0, attempts - 1), 6 * 3600)
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def _outcome_row(result: SendResult, *, attempts: int, now: datetime, ctx: SendContext) -> dict[str, object]:
    row: dict[str, object] = {"reply": result.reply, "error": None, "sent_at": None, "next_at": None}
    if result.outcome == "sent":
        row.update(status=DeliveryStatus.sent.name, sent_at=_db_time(now))
    elif result.outcome == "permanent":
        row.update(status=DeliveryStatus.failed.name, error=result.reply)
    elif result.outcome == "uncertain":
        row.update(status=DeliveryStatus.uncertain.name, error=result.reply)
    elif attempts >= ctx.max_attempts:
        row.update(status=DeliveryStatus.failed.name, error=f"gave up after {attempts} attempts: {result.reply}")
    else:
        row.update(status=DeliveryStatus.retry.name, error=result.reply,
                   next_at=_db_time(_retry_at(now, attempts, ctx)))
    return row


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
            raise LookupError(f"no issue with id {issue_id}")
        recover_stale_claims(session, issue_id=issue_id, now=clock())
        session.commit()
    templates = TemplateCache(engine, issue, ctx)
    make_recipient = RecipientFactory(issue, ctx)
    claim = secrets.token_hex(8)
    cursor = after_id
    with engine.connect() as conn, _fast_commits(conn):
        while True:
            now = clock()
            result.paused = _paused_reason(conn, issue_id)
            if result.paused is not None:
                break  # paused by an operator or a burst of failures: leave the rest pending
            rows = _claim(conn, issue_id=issue_id, after=cursor, upto=upto_id, limit=ctx.claim_size,
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
            {"until": _db_time(now + timedelta(seconds=self._seconds)), "claim": self._claim,
             "sending": DeliveryStatus.sending.name},
        ).rowcount  # type: ignore[attr-defined]
        self._conn.commit()
        if renewed < still_held:
            raise LeaseLost(f"claim {self._claim} lost {still_held - renewed} deliveries to lease recovery")
        self._renew_at = now + timedelta(seconds=self._seconds / 2)


class _Burst(Exception):
    """Too many failures in a row: something is wrong with the server or the account, not the addresses."""


def _paused_reason(conn: Connection, issue_id: int) -> str | None:
    row = conn.execute(text("SELECT status, paused_reason FROM issue WHERE id = :id"), {"id": issue_id}).one()
    conn.commit()
    return (row[1] or "paused") if row[0] == IssueStatus.paused.name else None


def pause_issue(conn: Connection, *, issue_id: int, reason: str) -> bool:
    """Stop an issue's sending; batches finish the message in hand and leave the rest pending."""
    changed = conn.execute(
        text("UPDATE issue SET status = :paused, paused_reason = :reason WHERE id = :id AND status = :sending"),
        {"paused": IssueStatus.paused.name, "reason": reason[:500], "id": issue_id,
         "sending": IssueStatus.sending.name},
    ).rowcount  # type: ignore[attr-defined]
    conn.commit()
    return bool(changed)


def resume_issue(conn: Connection, *, issue_id: int) -> bool:
    changed = conn.execute(
        text("UPDATE issue SET status = :sending, paused_reason = NULL WHERE id = :id AND status = :paused"),
        {"paused": IssueStatus.paused.name, "id": issue_id, "sending": IssueStatus.sending.name},
    ).rowcount  # type: ignore[attr-defined]
    conn.commit()
    return bool(changed)


class LeaseLost(RuntimeError):
    """The claim's lease ran out and its rows were settled by someone else."""


def _send_claimed(conn: Connection, rows: list[Claimed], *, claim: str, lease: _Lease,
                  templates: TemplateCache, make_recipient: RecipientFactory, messenger: Messenger,
                  ctx: SendContext, clock: Callable[[], datetime], result: BatchResult,
                  pacer: Pacer | None = None) -> None:
    subscribers = _subscribers(conn, [row.subscriber_id for row in rows])
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
        _settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        pause_issue(conn, issue_id=templates.issue_id, reason=str(burst))
    except DeliveryError as exc:
        # The server could not be reached: nothing of the rest was transmitted.
        _settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=False, now=clock())
        if exc.lasting:  # bad credentials will not fix themselves: stop the issue instead of burning retries
            pause_issue(conn, issue_id=templates.issue_id, reason=str(exc))
        raise
    except BaseException:
        # Interrupted (signal, shutdown): the current message may have gone out.
        _settle_unfinished(conn, rows[done:], claim=claim, first_in_flight=True, now=clock())
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
        values = _outcome_row(sent, attempts=row.attempts, now=now, ctx=ctx)
        outcome = sent.outcome
        if outcome != "sent":
            result.errors.append(f"{email}: {sent.reply}")
    setattr(result, outcome, getattr(result, outcome) + 1)
    # Recorded right after the reply, before the next message: progress is what was sent.
    conn.execute(_RECORD_SQL, {**values, "message_id": message_id, "now": _db_time(now), "id": row.id,
                               "claim": claim})
    if outcome == "permanent" and sent.code is not None and counts_against_address(sent.reply):
        # After the delivery's own record: on PostgreSQL each statement commits by itself, and a crash
        # between the two can at worst miss one count, never count a bounce twice on a retry.
        mark_permanent_failure(conn, subscriber_id=row.subscriber_id, reply=sent.reply, now=now,
                               bounce_limit=ctx.bounce_limit)
    conn.commit()
    return outcome


def _settle_unfinished(conn: Connection, rows: list[Claimed], *, claim: str,
                       first_in_flight: bool, now: datetime) -> None:
    """Give back the rows of an interrupted claim; if this fails, lease recovery does it later."""
    try:
        conn.rollback()
        for i, row in enumerate(rows):
            in_flight = first_in_flight and i == 0
            conn.execute(
                text(
                    "UPDATE delivery SET status = :status, claim = NULL, lease_until = NULL, updated_at = :now, "
                    "last_error = :error, attempts = CASE WHEN :release AND attempts > 0 THEN attempts - 1 "
                    "ELSE attempts END WHERE id = :id AND claim = :claim"
                ),
                {"status": (DeliveryStatus.uncertain if in_flight else DeliveryStatus.pending).name,
                 "error": "interrupted while this message may have been in flight" if in_flight else None,
                 "release": not in_flight, "now": _db_time(now), "id": row.id, "claim": claim},
            )
        conn.commit()
    except Exception:  # noqa: BLE001 - the original error matters more; leases cover this case
        pass


def close_if_done(session: Session, *, issue_id: int, now: datetime) -> bool:
    """Mark the issue finished when every delivery is in a final state (counted in the database)."""
    open_rows = session.exec(
        select(func.count()).select_from(Delivery).where(
            Delivery.issue_id == issue_id, Delivery.status.in_(OPEN_STATUSES)  # type: ignore[attr-defined]
        )
    ).one()
    if open_rows:
        return False
    issue = session.get(Issue, issue_id)
    if issue is not None and issue.status != IssueStatus.finished and issue.send_started_at is not None:
        issue.status = IssueStatus.finished
        issue.finished_at = now
        session.add(issue)
    return True


def delivery_counts(session: Session, *, issue_id: int) -> dict[str, int]:
    """How many deliveries of the issue are in each state (every state listed)."""
    rows = session.exec(
        select(Delivery.status, func.count()).where(Delivery.issue_id == issue_id).group_by(Delivery.status)
    ).all()
    counts = {status.value: 0 for status in DeliveryStatus}
    for status, n in rows:
        counts[DeliveryStatus(status).value] = n
    return counts


def iter_unsettled(session: Session, *, issue_id: int) -> Iterator[Delivery]:
    """Deliveries that need an operator's eye: failed and uncertain ones."""
    yield from session.exec(
        select(Delivery).where(
            Delivery.issue_id == issue_id,
            Delivery.status.in_((DeliveryStatus.failed, DeliveryStatus.uncertain)),  # type: ignore[attr-defined]
        ).order_by(Delivery.id)
    )

