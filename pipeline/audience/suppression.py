"""The suppression list: addresses that unsubscribed, bounced or were erased, and must stay unmailed.

A subscriber row says what an address is now; a suppression record says what its
owner told us, and it outlives the row. Every way into the list consults it:

    the subscribe form   may store a pending address, but only the owner's confirmation makes it active
    add / import         never make a suppressed address active, nor mail it a confirmation
    resend               never reaches one
    confirm              the owner's own fresh opt-in: the only thing that lifts it (besides an
                         operator importing with ``--force-consent``, which is recorded)

Records are kept by the SHA-256 of the normalized address, so an erased address
leaves no readable trace, only enough to recognise it if it is entered again.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from pipeline.models import Suppression, SuppressionReason, db_time

log = logging.getLogger("pipeline.consent")

_PREFIX = b"papermail-suppression:"  # a hash of this list's own, not one to look up in a table of bare sha256s
_LIFTED_BY_OWNER = "the subscriber's own confirmation"

# One row per address. A new reason replaces a lifted record (they left again); an active one keeps
# its first reason, except that their choice outranks ours (an unsubscribe beats a bounce) and an
# erasure beats everything (the row is gone: "removed" is what is left to say).
_UPSERT = text(
    "INSERT INTO suppression (address_hash, reason, created_at) VALUES (:hash, :reason, :now) "
    "ON CONFLICT (address_hash) DO UPDATE SET "
    "reason = CASE WHEN suppression.lifted_at IS NOT NULL OR suppression.reason = :bounced "
    "OR excluded.reason = :removed "
    "THEN excluded.reason ELSE suppression.reason END, "
    "created_at = CASE WHEN suppression.lifted_at IS NOT NULL THEN excluded.created_at "
    "ELSE suppression.created_at END, "
    "lifted_at = NULL, lifted_by = NULL, lifted_note = NULL"
)


def address_hash(address: str) -> str:
    """The key of a normalized address in the suppression list."""
    return hashlib.sha256(_PREFIX + address.encode("utf-8")).hexdigest()




def suppress(db: OrmSession | Connection, *, address: str, reason: SuppressionReason, now: datetime) -> None:
    """Record that ``address`` must not be mailed again (idempotent). The caller commits."""
    db.execute(_UPSERT, {"hash": address_hash(address), "reason": reason.name, "now": db_time(now),
                         "bounced": SuppressionReason.bounced.name, "removed": SuppressionReason.removed.name})


def active_suppression(session: Session, address: str) -> Suppression | None:
    """The record that keeps ``address`` from being mailed, or None if there is none (or it was lifted)."""
    record = session.exec(select(Suppression).where(Suppression.address_hash == address_hash(address))).first()
    return record if record is not None and record.lifted_at is None else None


def suppressed_hashes(session: Session) -> set[str]:
    """Every address hash that is suppressed now, for checking many addresses at once."""
    return set(session.exec(select(Suppression.address_hash).where(col(Suppression.lifted_at).is_(None))))


def lift(session: Session, *, address: str, now: datetime, by: str = _LIFTED_BY_OWNER, note: str | None = None,
         only: SuppressionReason | None = None) -> bool:
    """Lift the record of ``address`` (``only``: if it has that reason). True if one was lifted.

    Kept, not deleted: who lifted it, when and why stay on record.
    """
    record = active_suppression(session, address)
    if record is None or (only is not None and record.reason is not only):
        return False
    record.lifted_at, record.lifted_by, record.lifted_note = now, by[:100], (note or "")[:500] or None
    session.add(record)
    if by != _LIFTED_BY_OWNER:
        log.warning("suppression of %s (%s since %s) lifted by %s: %s", record.address_hash[:12],
                    record.reason.value, record.created_at.date(), by, note)
    return True
