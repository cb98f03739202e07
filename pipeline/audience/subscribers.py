"""Subscribers as operators manage them: add, import from CSV, list.

Addresses are validated and normalized with ``email-validator`` (no DNS
lookup), so the same person is stored once, and stored in their ASCII form: an
internationalized domain as IDNA (``bücher.example`` → ``xn--bcher-kva.example``),
which every mail server accepts in a ``To:`` header and an SMTP envelope. A
non-ASCII local part could only be sent with SMTPUTF8 (RFC 6531), which many
servers on the way do not offer, so such an address is refused when it is entered
rather than accepted and never delivered.

Nothing here makes a suppressed address (see ``pipeline.audience.suppression``) active:
an address that unsubscribed, bounced or was erased comes back only through its
owner's own confirmation, or through ``force_consent``, which is recorded.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import insert, inspect, update
from sqlmodel import Session, col, delete, select

from pipeline.audience.suppression import active_suppression, address_hash, lift, suppress
from pipeline.errors import SubscriberError
from pipeline.models import (
    Delivery,
    ReaderModel,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
    Vote,
    new_uid,
    utcnow,
)


def normalize_email(raw: str) -> str:
    """The canonical, ASCII form of an address, or SubscriberError saying what is wrong with it."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in raw):
        raise SubscriberError("an email address cannot contain line breaks or control characters")
    shown = raw.strip()[:100]
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{shown!r} is not a valid email address: {exc}") from exc
    if result.ascii_email is None:
        raise SubscriberError(f"{shown!r} has characters before the @ that many mail servers cannot deliver "
                              "(they need SMTPUTF8); please use an address written in ASCII")
    # Local parts are case-sensitive in theory and never in practice: store one form per person.
    return result.ascii_email.lower()


class UnsendableAddress(ValueError):
    """A stored address that cannot go into an SMTP envelope and a To: header as it is."""


def sendable_address(address: str) -> str:
    """The form of a stored address to send to: itself when ASCII (every address stored now),
    the IDNA form of an internationalized domain stored by an earlier version, or
    UnsendableAddress saying why not (a non-ASCII local part would need SMTPUTF8)."""
    if address.isascii() and address.isprintable() and " " not in address:
        return address
    try:
        return normalize_email(address)
    except SubscriberError as exc:
        raise UnsendableAddress(str(exc)) from None


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def validate_new_address(raw: str) -> str:
    """``normalize_email`` for an address about to be stored, which must also be harmless in an export.

    "=cmd@example.org" is valid by RFC 5322, but no mailbox needs that first character, and the
    address would end up in an operator's spreadsheet.
    """
    address = normalize_email(raw)
    if address.startswith(FORMULA_STARTS):
        raise SubscriberError(f"{address[:100]!r} cannot be used: an address must not begin with = + - or @")
    return address


class Suppressed(SubscriberError):
    """The address unsubscribed, bounced or was erased: only its owner's confirmation brings it back."""


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    already: int = 0
    kept_unsubscribed: int = 0  # unsubscribed, bounced or erased earlier: left as they are
    forced: list[str] = field(default_factory=list)  # suppressed addresses made active under force_consent
    invalid: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # new pending subscribers owed a confirmation mail


Outcome = Literal["added", "already", "kept", "forced"]


def store_address(session: Session, *, email: str, confirmed: bool, force_consent: str | None = None,
                  now: datetime | None = None) -> tuple[Subscriber, Outcome]:
    """Store an address for an operator. Returns the subscriber and what happened:

    ``added`` (a new row), ``already`` (known; a pending address becomes active if ``confirmed``),
    ``kept`` (unsubscribed or bounced, left as it is), ``forced`` (made active under ``force_consent``).
    An erased address raises ``Suppressed``: nothing is stored, and no confirmation mail may go to it.

    ``force_consent`` is the operator's statement that they hold the person's consent; it is
    recorded with the lifted suppression, and only with it does an unsubscribed or erased address
    become active again. A bounced address stays bounced (``clear-bounces`` is for that).
    """
    address = validate_new_address(email)
    now = now or utcnow()
    existing = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    suppressed = active_suppression(session, address)
    outcome = decide(existing.status if existing else None, suppressed=suppressed is not None, confirmed=confirmed,
                     force_consent=force_consent)
    if outcome == "forced":
        lift(session, address=address, now=now, by="operator import --force-consent", note=force_consent)
        if existing is None:
            return _new_subscriber(session, address, confirmed=True, now=now), "forced"
        existing.status, existing.confirmed_at, existing.unsubscribed_at = SubscriberStatus.active, now, None
        existing.updated_at = now
        session.add(existing)
        return existing, "forced"
    if existing is None:
        if suppressed is not None:
            raise Suppressed(f"{address} was {suppressed.reason.value} on {suppressed.created_at:%Y-%m-%d}: only "
                             "its owner can subscribe it again, from the site")
        return _new_subscriber(session, address, confirmed=confirmed, now=now), "added"
    if outcome == "already" and confirmed and existing.status == SubscriberStatus.pending:
        existing.status = SubscriberStatus.active
        existing.confirmed_at = existing.updated_at = now
        session.add(existing)
    return existing, outcome


def decide(status: SubscriberStatus | None, *, suppressed: bool, confirmed: bool,
           force_consent: str | None) -> Outcome:
    """What an operator's add or import does to an address, from its stored status (None: no row) and
    whether it is suppressed: the one rule behind ``store_address`` and the bulk ``import_rows``.

    An erased address (no row, suppressed) comes out ``kept``; ``store_address`` refuses it outright.
    A suppressed address asked for again through the form is pending until its owner confirms: ``kept``.
    """
    if suppressed and force_consent is not None and confirmed and status is not SubscriberStatus.bounced:
        return "forced"
    if status is None:
        return "kept" if suppressed else "added"
    if status in (SubscriberStatus.unsubscribed, SubscriberStatus.bounced) or suppressed:
        return "kept"
    return "already"


def _new_subscriber(session: Session, address: str, *, confirmed: bool, now: datetime) -> Subscriber:
    subscriber = Subscriber(email=address, status=SubscriberStatus.active if confirmed else SubscriberStatus.pending,
                            confirmed_at=now if confirmed else None, created_at=now, updated_at=now)
    session.add(subscriber)
    session.flush()
    return subscriber


def add_subscriber(session: Session, *, email: str, confirmed: bool) -> tuple[Subscriber, bool]:
    """``store_address`` without consent overrides. Returns (subscriber, created)."""
    subscriber, outcome = store_address(session, email=email, confirmed=confirmed)
    return subscriber, outcome == "added"


IMPORT_CHUNK = 2000  # rows per transaction: a SQLite write lock held this long keeps the site's form waiting little


def import_rows(session: Session, *, rows: Iterable[str], confirmed: bool, force_consent: str | None = None,
                chunk_size: int = IMPORT_CHUNK, progress: Callable[[int], None] | None = None,
                report: ImportReport | None = None) -> ImportReport:
    """Add addresses in bulk; unsubscribed, bounced and erased ones are counted and left as they are.

    The outcome of every row is what ``store_address`` would give it, row after row (a repeated address
    counts as already subscribed, or as left alone again), but the work is done per chunk of
    ``chunk_size`` rows: each address is validated once, the chunk's known rows and active
    suppression records are read in one query each, new rows are inserted and confirmed pending ones
    updated in one statement each. Only an address that ``force_consent`` revives goes through
    ``store_address`` itself, so that its lift is recorded as there.

    Each chunk is committed when it is done (a SQLite write lock held for a whole large list would
    keep the site's subscribe form and the senders waiting past their busy timeout), then added to
    ``report`` (a new one unless given), and ``progress`` is called with the number of rows handled
    so far. An error in the middle (the database going away) leaves the chunks before it committed,
    and a ``report`` passed in says what they stored: with ``confirmed=False``, the ids in
    ``to_confirm`` are owed a confirmation mail, which the caller sends, even then. Importing the same
    file again counts the stored ones as already subscribed and goes on with the rest. Check a file
    first (``read_csv_emails`` reads it whole) so that a file that cannot be read stores nothing.
    """
    report = report if report is not None else ImportReport()
    checked: dict[str, str | SubscriberError] = {}  # raw cell → address or why not: validated once
    chunk: list[str] = []
    done = 0
    for raw in rows:
        done += 1
        if not raw.strip():
            continue
        chunk.append(raw)
        if len(chunk) >= chunk_size:
            _commit_chunk(session, chunk, checked, report, confirmed=confirmed, force_consent=force_consent)
            chunk = []
            if progress is not None:
                progress(done)
    if chunk:
        _commit_chunk(session, chunk, checked, report, confirmed=confirmed, force_consent=force_consent)
    if progress is not None:
        progress(done)
    return report


def _commit_chunk(session: Session, raws: list[str], checked: dict[str, str | SubscriberError],
                  report: ImportReport, *, confirmed: bool, force_consent: str | None) -> None:
    part = ImportReport()
    _import_chunk(session, raws, checked, part, confirmed=confirmed, force_consent=force_consent)
    session.commit()
    report.added += part.added
    report.already += part.already
    report.kept_unsubscribed += part.kept_unsubscribed
    report.forced += part.forced
    report.invalid += part.invalid
    report.to_confirm += part.to_confirm


def _checked_address(raw: str, checked: dict[str, str | SubscriberError]) -> str | SubscriberError:
    if raw not in checked:
        try:
            checked[raw] = validate_new_address(raw)
        except SubscriberError as exc:
            checked[raw] = exc
    return checked[raw]


def _import_chunk(session: Session, raws: list[str], checked: dict[str, str | SubscriberError],
                  report: ImportReport, *, confirmed: bool, force_consent: str | None) -> None:
    addresses: list[str] = []
    for raw in raws:
        address = _checked_address(raw, checked)
        if isinstance(address, SubscriberError):
            report.invalid.append(str(address))
        else:
            addresses.append(address)
    unique = list(dict.fromkeys(addresses))
    found = session.execute(select(Subscriber.email, Subscriber.status, Subscriber.id)
                            .where(col(Subscriber.email).in_(unique)))
    known: dict[str, tuple[SubscriberStatus, int]] = {email: (status, sub_id) for email, status, sub_id in found}
    hashes = {address: address_hash(address) for address in unique}
    suppressed = set(session.exec(select(Suppression.address_hash).where(
        col(Suppression.address_hash).in_(list(hashes.values())), col(Suppression.lifted_at).is_(None))))
    now = utcnow()
    outcome: dict[str, Outcome] = {}
    new: list[str] = []
    to_activate: list[int] = []
    forced: list[str] = []  # revived under force_consent: the careful path, store_address lifts and records it
    for address in unique:
        status, sub_id = known.get(address, (None, 0))
        outcome[address] = decide(status, suppressed=hashes[address] in suppressed, confirmed=confirmed,
                                  force_consent=force_consent)
        if outcome[address] == "forced":
            forced.append(address)
        elif outcome[address] == "added":
            new.append(address)
        elif outcome[address] == "already" and confirmed and status is SubscriberStatus.pending:
            to_activate.append(sub_id)
    ids = _insert_new(session, new, confirmed=confirmed, now=now)
    if to_activate:
        session.execute(update(Subscriber).where(col(Subscriber.id).in_(to_activate)).values(
            status=SubscriberStatus.active, confirmed_at=now, updated_at=now))
    for address in forced:
        store_address(session, email=address, confirmed=True, force_consent=force_consent, now=now)
    seen: set[str] = set()
    for address in addresses:
        first = outcome[address]
        if address in seen:
            first = "kept" if first == "kept" else "already"  # what store_address finds the second time
        seen.add(address)
        if first == "added":
            report.added += 1
            if not confirmed:
                report.to_confirm.append(ids[address])
        elif first == "forced":
            report.forced.append(address)
        elif first == "kept":
            report.kept_unsubscribed += 1
        else:
            report.already += 1


def _insert_new(session: Session, addresses: list[str], *, confirmed: bool, now: datetime) -> dict[str, int]:
    """Insert new subscribers; returns their ids by address if they are pending (owed a confirmation)."""
    if not addresses:
        return {}
    # The model's own defaults for every column not set here, so a column added later needs nothing.
    template = Subscriber(email="")
    base = {attr.key: getattr(template, attr.key) for attr in inspect(Subscriber).column_attrs
            if attr.key not in ("id", "email", "uid")}
    base.update(status=SubscriberStatus.active if confirmed else SubscriberStatus.pending,
                confirmed_at=now if confirmed else None, confirmation_sent_at=None if confirmed else now,
                created_at=now, updated_at=now)
    session.execute(insert(Subscriber), [{**base, "email": address, "uid": new_uid()} for address in addresses])
    if confirmed:
        return {}
    # Read back rather than INSERT … RETURNING: an executemany of one short statement is what psycopg
    # sends fastest (pipelined); a RETURNING insert of many rows is one long statement it parses each time.
    found = session.execute(select(Subscriber.email, Subscriber.id).where(col(Subscriber.email).in_(addresses)))
    return {email: sub_id for email, sub_id in found if sub_id is not None}


def read_csv_emails(path: Path) -> list[str]:
    """Addresses from a CSV: the ``email`` column if there is a header with one, else the first column.

    The whole file is read and checked before anything is returned, so a file that cannot be read
    (not UTF-8, a cell over the csv module's field limit, a NUL byte) is a SubscriberError naming
    the line and what to do, and an import that calls this first stores nothing from it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberError(f"cannot read {path}: {exc.strerror}") from exc
    body = data.removeprefix(codecs.BOM_UTF8)  # the mark spreadsheets put first in "CSV UTF-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise SubscriberError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{body[exc.start]:02x} there is in another encoding, "
            "Latin-1 or Windows-1252 perhaps): save the file as CSV UTF-8 and import it again; nothing was imported"
        ) from None
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))  # newline="": the csv module reads line ends itself
    start = 1  # where the row being read begins: a cell left open by a stray quote runs on over many lines
    try:
        for row in reader:
            rows.append(row)
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field limit" in str(exc):
            what = (f"a cell is longer than {csv.field_size_limit()} characters, which no address is: check that "
                    "this is the right file and that no quote is left open there (it runs a cell on to the next "
                    "quote), correct it")
        else:
            what = f"not CSV that can be read ({exc}): correct that line"
        raise SubscriberError(f"{path}, line {start}: {what} and import it again; nothing was imported") from None
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "email" in header:
        column = header.index("email")
        return [r[column] for r in rows[1:] if len(r) > column]
    return [r[0] for r in rows if r]


def list_subscribers(session: Session, *, status: SubscriberStatus | None = None) -> list[Subscriber]:
    stmt = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        stmt = stmt.where(Subscriber.status == status)
    return list(session.exec(stmt))


EXPORT_FIELDS = ("email", "status", "created_at", "confirmed_at", "unsubscribed_at", "paused", "frequency",
                 "weekday", "digest_size")


def export_rows(session: Session) -> Iterator[dict[str, object]]:
    """Every subscriber as a flat row of CSV cells, streamed in id order; no cell runs as a formula."""
    for sub in session.exec(select(Subscriber).order_by(col(Subscriber.id))).yield_per(1000):
        row = {name: getattr(sub, name) for name in EXPORT_FIELDS}
        yield {k: _inert_cell(v.isoformat() if isinstance(v, datetime) else getattr(v, "value", v))
               for k, v in row.items()}


def _inert_cell(value: object) -> object:
    # OWASP "CSV injection": a spreadsheet opening the export runs "=HYPERLINK(...)" or "-2+3" as a
    # formula. A leading ' makes it show the text as it is. Every column: an address stored before
    # such addresses were refused, or a field added later, is checked as well as today's.
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def remove_subscribers(session: Session, *, emails: Iterable[str],
                       now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Erase addresses, their delivery records and their votes (a person's right to be forgotten).

    Returns (removed, unknown). What stays is the address's suppression record, a hash that
    cannot be read back: the address is gone, and an import can never add it again. Its owner
    can still subscribe again from the site, with a confirmation.
    """
    now = now or utcnow()
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
        session.execute(delete(Delivery).where(col(Delivery.subscriber_id) == sub.id))
        session.execute(delete(Vote).where(col(Vote.subscriber_id) == sub.id))
        session.execute(delete(ReaderModel).where(col(ReaderModel.subscriber_id) == sub.id))
        session.delete(sub)
        suppress(session, address=address, reason=SuppressionReason.removed, now=now)
        removed.append(address)
    return removed, unknown
