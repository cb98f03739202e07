"""The stored engagement history as the backtest reads it: per listing day, the papers and their snapshots.

The candidates of a day are those the daily issue ranks (``issues.candidates_for``): listed that day, not
withdrawn. Papers the previous week's issues featured are not left out: the backtest judges the score, and
no issues need exist for it.

Reads Paper and PaperMetrics only, a few days at a time, and only the columns and snapshots the backtest
uses (up to each day's send moment plus the horizon), whatever the size of the store.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipeline.digest.backtest import HistoryDay, send_moment
from pipeline.digest.issues import listed_at
from pipeline.digest.rank import Candidate, Snapshot
from pipeline.ingest.store import CHUNK
from pipeline.models import Paper, PaperMetrics

DAYS_PER_QUERY = 7


def stored_range(session: Session) -> tuple[dt.date, dt.date] | None:
    """The first and last day any stored paper is listed on, or None for an empty store."""
    first, last = session.exec(select(func.min(Paper.listed_on), func.max(Paper.listed_on))).one()
    return None if first is None else (first, last)


def count_papers(session: Session, *, first: dt.date, last: dt.date, organization: str | None = None) -> int:
    """Papers listed from ``first`` to ``last``; with ``organization``, only those listed under it."""
    query = select(func.count()).select_from(Paper).where(Paper.listed_on >= first, Paper.listed_on <= last,
                                                          col(Paper.withdrawn_at).is_(None))
    if organization is not None:
        query = query.where(Paper.organization == organization)
    return int(session.exec(query).one())


def load_days(session: Session, *, first: dt.date, last: dt.date, send_hour: int,
              horizon: dt.timedelta) -> Iterator[HistoryDay]:
    """Every day from ``first`` to ``last``, oldest first, with the papers listed on it (a day with none
    comes too, empty) and their snapshots fetched up to the day's send moment plus ``horizon``."""
    start = first
    while start <= last:
        end = min(last, start + dt.timedelta(days=DAYS_PER_QUERY - 1))
        yield from _chunk(session, first=start, last=end, send_hour=send_hour, horizon=horizon)
        start = end + dt.timedelta(days=1)


def _chunk(session: Session, *, first: dt.date, last: dt.date, send_hour: int,
           horizon: dt.timedelta) -> Iterator[HistoryDay]:
    papers = session.exec(
        select(col(Paper.id), col(Paper.arxiv_id), col(Paper.listed_on), col(Paper.submitted_at))
        .where(Paper.listed_on >= first, Paper.listed_on <= last, col(Paper.withdrawn_at).is_(None))
        .order_by(col(Paper.listed_on), col(Paper.id))
    ).all()
    until = send_moment(last, send_hour=send_hour) + horizon
    ids = [paper_id for paper_id, *_ in papers if paper_id is not None]
    snapshots: dict[int, list[Snapshot]] = defaultdict(list)
    newest: dict[int, dt.datetime] = {}
    for at in range(0, len(ids), CHUNK):
        some = ids[at: at + CHUNK]
        rows = session.execute(  # five columns: more than sqlmodel's select is typed for
            sa.select(col(PaperMetrics.paper_id), col(PaperMetrics.fetched_at), col(PaperMetrics.upvotes),
                      col(PaperMetrics.comments), col(PaperMetrics.github_stars))
            .where(col(PaperMetrics.paper_id).in_(some), col(PaperMetrics.fetched_at) <= until)
            .order_by(col(PaperMetrics.paper_id), col(PaperMetrics.fetched_at))
        )
        for paper_id, fetched_at, upvotes, comments, stars in rows:
            snapshots[paper_id].append(Snapshot(fetched_at, upvotes, comments, stars))
        # Whether the history reaches past a day's horizon is told by the newest snapshot of all.
        newest.update(session.exec(
            select(PaperMetrics.paper_id, func.max(PaperMetrics.fetched_at))
            .where(col(PaperMetrics.paper_id).in_(some)).group_by(col(PaperMetrics.paper_id))
        ).all())
    by_day: dict[dt.date, list[tuple[int, str, dt.datetime]]] = defaultdict(list)
    for paper_id, arxiv_id, listed_on, submitted_at in papers:
        assert paper_id is not None  # stored rows have ids
        by_day[listed_on].append((paper_id, arxiv_id, listed_at(submitted_at, listed_on)))
    day = first
    while day <= last:
        send_at = send_moment(day, send_hour=send_hour)
        day_end = send_at + horizon
        listed = by_day.get(day, [])
        candidates = tuple(
            Candidate(arxiv_id, listed_at, tuple(s for s in snapshots[paper_id] if s.fetched_at <= day_end))
            for paper_id, arxiv_id, listed_at in listed
        )
        times = [newest[paper_id] for paper_id, _, _ in listed if paper_id in newest]
        yield HistoryDay(day=day, send_at=send_at, candidates=candidates, last_fetch=max(times) if times else None)
        day += dt.timedelta(days=1)
