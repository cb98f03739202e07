"""The delivery ledger: one row per issue × subscriber, the source of truth for sending; all its SQL.

Lifecycle of a delivery row::

    pending ──claim──▶ sending ──2xx──▶ sent
       ▲                  │ ├──4xx / connection lost──▶ retry ──(due)──▶ claimed again
       │                  │ ├──5xx──▶ failed (reply kept)
       │                  │ ├──lost after the final "."──▶ uncertain
       │                  │ └──subscriber no longer active──▶ skipped
       └──stale claim, not yet tried──┘

A batch claims a few rows at a time with one compare-and-set UPDATE (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), sends them in
id order over one connection, journals each result right after the
server's reply and writes the results in bulk (:mod:`pipeline.delivery.journal`).
So if the sender dies, once its journal is folded in, the rows still "sending"
under its claim are a suffix in id order: the first of them may have been in
flight and becomes ``uncertain`` (never re-sent automatically: a duplicate is
worse than asking an operator); the rest were never tried and go back to pending.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, text
from sqlmodel import Session, col, func, select

from pipeline.delivery.journal import Record, claim_window, forget_journal, read_journal
from pipeline.delivery.messengers import SendResult
from pipeline.delivery.personalize import SendContext
from pipeline.models import Delivery, DeliveryStatus, Edition, Frequency, Issue, IssueStatus, SubscriberStatus, db_time

OPEN_STATUSES = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retry)




def open_deliveries(session: Session, *, issue: Issue, now: datetime, default_size: int) -> int:
    """Snapshot the recipients once: a row per subscriber who wants this edition. Later runs add nobody.

    Daily editions go to active, unpaused daily subscribers; weekly editions to
    active, unpaused weekly subscribers whose weekday is the day it is sent
    (the day after the issue's date). Each row keeps the subscriber's size.
    Returns how many rows were created (0 when sending had already started).
    """
    started = session.execute(
        text("UPDATE issue SET send_started_at = :now, status = :sending WHERE id = :id AND send_started_at IS NULL"),
        {"now": db_time(now), "sending": IssueStatus.sending.name, "id": issue.id},
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
        {"issue": issue.id, "pending": DeliveryStatus.pending.name, "now": db_time(now),
         "active": SubscriberStatus.active.name, "default_size": default_size,
         "frequency": (Frequency.weekly if weekly else Frequency.daily).name,
         "weekday": (issue.date + timedelta(days=1)).weekday()},
    )
    # The table just grew by a whole list: without fresh statistics PostgreSQL plans each claim as a scan
    # of every pending row (a send of N would cost N² / claim size row visits).
    session.execute(text("ANALYZE delivery"))
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
    if low is None or high is None:
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


def recover_stale_claims(session: Session | Connection, *, issue_id: int, now: datetime,
                         journal_dir: Path | None = None) -> tuple[int, int]:
    """Settle rows left "sending" by a sender whose lease ran out. Returns (uncertain, released).

    The dead sender's journal, when it is on this machine, is folded in first: then only the
    first row it still held may have been in flight. Without it, as many rows as the sender
    could hold unwritten, plus that one, may have gone out (see :mod:`pipeline.delivery.journal`).
    """
    rows = session.execute(
        text(
            "SELECT id, claim FROM delivery WHERE issue_id = :issue AND status = :sending "
            "AND lease_until < :now ORDER BY id"
        ),
        {"issue": issue_id, "sending": DeliveryStatus.sending.name, "now": db_time(now)},
    ).all()
    held: dict[str | None, list[int]] = {}
    for row_id, claim in rows:
        held.setdefault(claim, []).append(row_id)
    uncertain = released = 0
    for claim, ids in held.items():
        records = read_journal(journal_dir, claim) if claim else None
        if records:
            record_results(session, records)
            done = {int(r["id"]) for r in records}  # type: ignore[call-overload]
            ids = [i for i in ids if i not in done]
        maybe_sent = 1 if records is not None else claim_window(claim) + 1
        for i, row_id in enumerate(ids):
            first = i < maybe_sent
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
                {"status": status.name, "error": error, "release": not first, "now": db_time(now), "id": row_id,
                 "sending": DeliveryStatus.sending.name, "claim": claim},
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                uncertain += first
                released += not first
        if claim:
            forget_journal(journal_dir, claim)
    return uncertain, released


class Claimed(NamedTuple):
    """A delivery row this batch holds under its lease."""

    id: int
    subscriber_id: int
    attempts: int
    size: int
    resend_id: int | None  # set when an operator's resend queued it again: the copy gets its own Message-ID
    selection_id: int | None  # which papers (pipeline.delivery.selections); None: the top ``size``


_CLAIM_SQL = (
    "UPDATE delivery SET status = :sending, claim = :claim, lease_until = :lease, "
    "attempts = attempts + 1, updated_at = :now "
    "WHERE id IN (SELECT id FROM delivery WHERE issue_id = :issue AND id > :after AND id <= :upto "
    "AND (status = :pending OR (status = :retry AND next_attempt_at <= :now)) "
    "ORDER BY id LIMIT :limit{lock}) "
    "AND status IN (:pending, :retry) "
    "RETURNING id, subscriber_id, attempts, size, resend_id, selection_id"
)

_RECORD_SQL = text(
    "UPDATE delivery SET status = :status, smtp_reply = :reply, last_error = :error, "
    "message_id = COALESCE(:message_id, message_id), sent_at = COALESCE(:sent_at, sent_at), "
    "next_attempt_at = :next_at, claim = NULL, lease_until = NULL, updated_at = :now "
    "WHERE id = :id AND claim = :claim"
)
_TIMES = ("sent_at", "next_at", "now")


def record_results(conn: Session | Connection, records: list[Record]) -> None:
    """Write sends' results to the ledger; the caller commits.

    Each record (see :func:`pipeline.delivery.batch.result_record`) changes its row only while
    the row is still held under the record's claim, so writing one twice changes nothing. On
    PostgreSQL the records go in one ``UPDATE … FROM (VALUES …)``: one statement and one round
    trip for the lot; SQLite runs in process and takes them one by one.
    """
    if not records:
        return
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    if dialect.name != "postgresql":
        conn.execute(_RECORD_SQL, [_bindable(r) for r in records])
        return
    conn.execute(_BULK_RECORD_SQL, {"records": json.dumps(records, separators=(",", ":"))})


_COLUMNS = {"id": "integer", "status": "varchar", "reply": "varchar", "error": "varchar", "message_id": "varchar",
            "sent_at": "timestamp", "next_at": "timestamp", "now": "timestamp", "claim": "varchar"}
# The records as one JSON parameter: the same statement for any number of them, parsed and planned once,
# and no per-value work in the driver.
_BULK_RECORD_SQL = text(
    "UPDATE delivery AS d SET status = v.status, smtp_reply = v.reply, last_error = v.error, "
    "message_id = COALESCE(v.message_id, d.message_id), sent_at = COALESCE(v.sent_at, d.sent_at), "
    "next_attempt_at = v.next_at, claim = NULL, lease_until = NULL, updated_at = v.now "
    "FROM json_to_recordset(CAST(:records AS json)) "
    f"AS v({', '.join(f'{key} {kind}' for key, kind in _COLUMNS.items())}) WHERE d.id = v.id AND d.claim = v.claim"
)


def _bindable(record: Record) -> Record:
    out = dict(record)
    for key in _TIMES:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = datetime.fromisoformat(value)
    return out


@contextmanager
def fast_commits(conn: Connection) -> Iterator[None]:
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


def claim_rows(conn: Connection, *, issue_id: int, after: int, upto: int, limit: int, claim: str,
           now: datetime, lease_until: datetime) -> list[Claimed]:
    lock = " FOR UPDATE SKIP LOCKED" if conn.dialect.name == "postgresql" else ""
    rows = conn.execute(
        text(_CLAIM_SQL.format(lock=lock)),
        {"sending": DeliveryStatus.sending.name, "claim": claim, "lease": db_time(lease_until),
         "now": db_time(now), "issue": issue_id, "after": after, "upto": upto, "limit": limit,
         "pending": DeliveryStatus.pending.name, "retry": DeliveryStatus.retry.name},
    ).all()
    conn.commit()
    return sorted(Claimed(*r) for r in rows)


def subscribers_at_send(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    """(email, uid, why not to send or None) per subscriber id, read at send time."""
    stmt = text("SELECT id, email, uid, status, paused FROM subscriber WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    out: dict[int, tuple[str, str, str | None]] = {}
    for row_id, email, uid, status, paused in conn.execute(stmt, {"ids": ids}):
        reason = f"subscriber is {status}" if status != SubscriberStatus.active.name else None
        out[row_id] = (email, uid, reason or ("subscriber paused" if paused else None))
    return out


def retry_at(now: datetime, attempts: int, ctx: SendContext) -> datetime:
    # Exponential backoff with jitter so a recovering server is not hit by every retry at once.
    delay = min(ctx.retry_base_seconds * 2 ** max(0, attempts - 1), 6 * 3600)
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def outcome_row(result: SendResult, *, attempts: int, now: datetime, ctx: SendContext,
                now_text: str | None = None) -> Record:
    """A send's result as ledger values; times as ISO text (``now_text`` is ``now`` so), so the same record
    can be journaled."""
    row: Record = {"reply": result.reply, "error": None, "sent_at": None, "next_at": None}
    if result.outcome == "sent":
        row.update(status=DeliveryStatus.sent.name, sent_at=now_text or db_time(now).isoformat())
    elif result.outcome == "permanent":
        row.update(status=DeliveryStatus.failed.name, error=result.reply)
    elif result.outcome == "uncertain":
        row.update(status=DeliveryStatus.uncertain.name, error=result.reply)
    elif attempts >= ctx.max_attempts:
        row.update(status=DeliveryStatus.failed.name, error=f"gave up after {attempts} attempts: {result.reply}")
    else:
        row.update(status=DeliveryStatus.retry.name, error=result.reply,
                   next_at=db_time(retry_at(now, attempts, ctx)).isoformat())
    return row


def paused_reason(conn: Connection, issue_id: int) -> str | None:
    row = conn.execute(text("SELECT status, paused_reason FROM issue WHERE id = :id"), {"id": issue_id}).one()
    conn.commit()
    return (row[1] or "paused") if row[0] == IssueStatus.paused.name else None


def pause_issue(conn: Connection, *, issue_id: int, reason: str) -> bool:
    """Stop an issue's sending; batches finish the message in hand and leave the rest pending."""
    changed = conn.execute(
        text("UPDATE issue SET status = :paused, paused_reason = :reason WHERE id = :id AND status = :sending"),
        {"paused": IssueStatus.paused.name, "reason": reason[:500], "id": issue_id,
         "sending": IssueStatus.sending.name},
    ).rowcount
    conn.commit()
    return bool(changed)


def resume_issue(conn: Connection, *, issue_id: int) -> bool:
    changed = conn.execute(
        text("UPDATE issue SET status = :sending, paused_reason = NULL WHERE id = :id AND status = :paused"),
        {"paused": IssueStatus.paused.name, "id": issue_id, "sending": IssueStatus.sending.name},
    ).rowcount
    conn.commit()
    return bool(changed)


def settle_unfinished(conn: Connection, rows: list[Claimed], *, claim: str,
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
                 "release": not in_flight, "now": db_time(now), "id": row.id, "claim": claim},
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
        ).order_by(col(Delivery.id))
    )

