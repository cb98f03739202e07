"""A reader's "more like this" / "less like this" on the papers of their digest.

One vote per reader and paper: a second replaces the first. Votes are kept only for stored
papers (every paper a digest shows is one), so a link cannot fill the table with made-up ids.
A vote changes nothing else about the reader: an unsubscribed reader's old link still records
one, and they stay unsubscribed. Votes are personal data: erasing a subscriber deletes them
(``pipeline.audience.subscribers.remove_subscribers``), and the reader can clear them from the
preferences page. The caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, col, delete, func, select

from pipeline.ingest.hf import normalize_arxiv_id
from pipeline.models import Paper, Vote, db_time

VOTES = {"more": 1, "less": -1}  # the ?vote= of the links, and the value stored
VOTE_NAMES = {value: name for name, value in VOTES.items()}
SHOWN_VOTES = 100  # the newest, on the preferences page

# One statement on SQLite and PostgreSQL alike: two clicks at once still leave one row.
_UPSERT = text(
    "INSERT INTO vote (subscriber_id, arxiv_id, value, voted_at) VALUES (:subscriber_id, :arxiv_id, :value, :now) "
    "ON CONFLICT (subscriber_id, arxiv_id) DO UPDATE SET value = excluded.value, voted_at = excluded.voted_at"
)


def parse_vote(raw: object) -> int | None:
    """+1 for "more", -1 for "less", None for anything else."""
    return VOTES.get(raw.strip().lower()) if isinstance(raw, str) else None


def parse_paper_id(raw: object) -> str | None:
    """An arXiv id without its version ("2503.16428v2" → "2503.16428"), or None if it is not one."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    return normalize_arxiv_id(raw)


def paper_title(session: Session, arxiv_id: str) -> str | None:
    """The stored paper's title, or None if no paper with that id is stored."""
    return session.exec(select(Paper.title).where(Paper.arxiv_id == arxiv_id)).first()


def record_vote(session: Session, *, subscriber_id: int, arxiv_id: str, value: int, now: dt.datetime) -> None:
    """Record the reader's vote on a paper, replacing any earlier one (``value`` is +1 or -1)."""
    if value not in VOTE_NAMES:
        raise ValueError(f"a vote is +1 or -1, not {value!r}")
    session.execute(_UPSERT, {"subscriber_id": subscriber_id, "arxiv_id": arxiv_id, "value": value,
                              "now": db_time(now)})


def current_vote(session: Session, *, subscriber_id: int, arxiv_id: str) -> Vote | None:
    return session.exec(select(Vote).where(Vote.subscriber_id == subscriber_id, Vote.arxiv_id == arxiv_id)).first()


def clear_votes(session: Session, *, subscriber_id: int) -> int:
    """Delete every vote of the reader; how many there were."""
    result = session.execute(delete(Vote).where(col(Vote.subscriber_id) == subscriber_id))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class VoteView:
    """A vote as the preferences page lists it."""

    arxiv_id: str
    title: str | None  # None: the paper is not stored (any more)
    value: int
    voted_at: dt.datetime

    @property
    def name(self) -> str:
        return VOTE_NAMES[self.value]


def votes_for(session: Session, *, subscriber_id: int, limit: int = SHOWN_VOTES) -> tuple[list[VoteView], int]:
    """The reader's newest votes (at most ``limit``), with the papers' titles, and how many votes they have."""
    rows = session.exec(
        select(Vote.arxiv_id, Paper.title, Vote.value, Vote.voted_at)
        .join(Paper, col(Paper.arxiv_id) == col(Vote.arxiv_id), isouter=True)
        .where(Vote.subscriber_id == subscriber_id)
        .order_by(col(Vote.voted_at).desc(), col(Vote.id).desc())
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(Vote).where(Vote.subscriber_id == subscriber_id)).one()
    return [VoteView(arxiv_id, title, value, voted_at) for arxiv_id, title, value, voted_at in rows], int(total)
