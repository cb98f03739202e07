"""Subscribers as operators manage them: add, import from CSV, list.

Addresses are validated and normalized with ``email-validator`` (no DNS
lookup), so the same person is stored once. ASCII addresses only: every
address goes into a ``To:`` header and an SMTP envelope unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, delete, select

from pipeline.errors import SubscriberError
from pipeline.models import Delivery, Subscriber, SubscriberStatus, utcnow


def normalize_email(raw: str) -> str:
    """The canonical form of an address, or SubscriberError saying what is wrong with it."""
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise SubscriberError("an email address cannot contain line breaks or control characters")
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{raw.strip()!r} is not a valid email address: {exc}") from exc
    # Local parts are case-sensitive in theory and never in practice: store one form per person.
    return result.normalized.lower()


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    already: int = 0
    kept_unsubscribed: int = 0
    invalid: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # new pending subscribers owed a confirmation mail


def add_subscriber(session: Session, *, email: str, confirmed: bool) -> tuple[Subscriber, bool]:
    """Store an address. Returns (subscriber, created). Never reactivates an unsubscribed address."""
    address = normalize_email(email)
    existing = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if existing is not None:
        if confirmed and existing.status == SubscriberStatus.pending:
            existing.status = SubscriberStatus.active
            existing.confirmed_at = existing.updated_at = utcnow()
            session.add(existing)
        return existing, False
    now = utcnow()
    subscriber = Subscriber(
        email=address,
        status=SubscriberStatus.active if confirmed else SubscriberStatus.pending,
        confirmed_at=now if confirmed else None,
    )
    session.add(subscriber)
    session.flush()
    return subscriber, True


def import_rows(session: Session, *, rows: Iterable[str], confirmed: bool) -> ImportReport:
    """Add addresses in bulk; unsubscribed and bounced ones are counted and left as they are."""
    report = ImportReport()
    for raw in rows:
        if not raw.strip():
            continue
        try:
            subscriber, created = add_subscriber(session, email=raw, confirmed=confirmed)
        except SubscriberError as exc:
            report.invalid.append(str(exc))
            continue
        if created:
            report.added += 1
            if not confirmed:
                subscriber.confirmation_sent_at = utcnow()
                report.to_confirm.append(subscriber.id)  # type: ignore[arg-type]
        elif subscriber.status in (SubscriberStatus.unsubscribed, SubscriberStatus.bounced):
            report.kept_unsubscribed += 1
        else:
            report.already += 1
    return report


def read_csv_emails(path: Path) -> list[str]:
    """Addresses from a CSV: the ``email`` column if there is a header with one, else the first column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SubscriberError(f"cannot read {path}: {exc.strerror}") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "email" in header:
        column = header.index("email")
        return [r[column] for r in rows[1:] if len(r) > column]
    return [r[0] for r in rows if r]


def list_subscribers(session: Session, *, status: SubscriberStatus | None = None) -> list[Subscriber]:
    stmt = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        stmt = stmt.where(Subscriber.status == status)
    return list(session.exec(stmt))


EXPORT_FIELDS = ("email", "status", "created_at", "confirmed_at", "unsubscribed_at", "paused", "frequency",
                 "weekday", "digest_size")


def export_rows(session: Session) -> Iterator[dict[str, object]]:
    """Every subscriber as a flat row, streamed in id order."""
    for sub in session.exec(select(Subscriber).order_by(Subscriber.id)).yield_per(1000):
        row = {name: getattr(sub, name) for name in EXPORT_FIELDS}
        yield {k: (v.isoformat() if isinstance(v, datetime) else getattr(v, "value", v)) for k, v in row.items()}


def remove_subscribers(session: Session, *, emails: Iterable[str]) -> tuple[list[str], list[str]]:
    """Erase addresses and their delivery records (a person's right to be forgotten).

    Returns (removed, unknown). Unlike an unsubscribe, nothing of the address is kept,
    so a later import can add it again.
    """
    removed, unknown = [], []
    for raw in emails:
        try:
            address = normalize_email(raw)
        except SubscriberError:
            unknown.append(raw)
            continue
        sub = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        if sub is None:
            unknown.append(address)
            continue
        session.exec(delete(Delivery).where(Delivery.subscriber_id == sub.id))  # type: ignore[call-overload]
        session.delete(sub)
        removed.append(address)
    return removed, unknown
