"""Issues: rank the day's candidates, freeze the result, render it once.

An issue is named after the day whose papers it ranks, in one of two editions:
daily (the papers listed that day) and weekly (the seven days up to it). It
describes the moment ``as_of`` = the next day's send hour (and the few minutes
the run at that hour takes to fetch the list, ``FETCH_GRACE``), or now if that
is earlier, so rebuilding a past day gives the same order whenever it runs.

The ranked list is frozen with up to ``POOL_SIZE`` candidates, the pool each
reader's selection is drawn from, and every candidate's card is rendered once
and cut into blocks (``Issue.blocks``); ``html`` and ``text`` are the global
digest of the list's default size, joined from them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from pipeline.compose.blocks import top
from pipeline.compose.render import DigestContext, render_blocks
from pipeline.digest.rank import Candidate, Snapshot, TrendScore, Weights, rank, why_trending
from pipeline.errors import IssueError
from pipeline.models import (
    Delivery,
    Edition,
    Image,
    Issue,
    Paper,
    PaperMetrics,
    utcnow,
)

RECENTLY_FEATURED_DAYS = 7
POOL_SIZE = 60  # candidates frozen in an issue: what interests filter (a day's list has about 50)


WEEKLY_DAYS = 7


@dataclass(frozen=True, slots=True)
class RankRequest:
    day: dt.date
    as_of: dt.datetime
    weights: Weights
    candidate_days: int = 1
    edition: Edition = Edition.daily

    @property
    def first_day(self) -> dt.date:
        days = WEEKLY_DAYS if self.edition is Edition.weekly else self.candidate_days
        return self.day - dt.timedelta(days=days - 1)


# The daily run starts at the send hour and ranks what it has just fetched: a snapshot taken in its first
# minutes describes the send hour, not a later moment.
FETCH_GRACE = dt.timedelta(minutes=15)


def as_of_for(day: dt.date, *, send_hour: int, now: dt.datetime) -> dt.datetime:
    cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(send_hour), tzinfo=dt.UTC) + FETCH_GRACE
    return min(cutoff, now)


def listed_at(submitted_at: dt.datetime | None, listed_on: dt.date) -> dt.datetime:
    """When a paper entered the daily list: its submission time there, else that day's midnight (UTC)."""
    if submitted_at is not None:
        return submitted_at
    return dt.datetime.combine(listed_on, dt.time(0), tzinfo=dt.UTC)


def _recently_featured(session: Session, day: dt.date) -> set[str]:
    """arXiv ids at the top of the previous week's daily issues: a paper is featured once."""
    since = day - dt.timedelta(days=RECENTLY_FEATURED_DAYS)
    issues = session.exec(
        select(Issue.items, Issue.size).where(Issue.date >= since, Issue.date < day, Issue.edition == Edition.daily)
    ).all()
    return {item["arxiv_id"] for items, size in issues for item in items[:size]}


def candidates_for(session: Session, req: RankRequest) -> tuple[list[Candidate], dict[str, Paper]]:
    papers = session.exec(
        select(Paper).where(Paper.listed_on >= req.first_day, Paper.listed_on <= req.day,
                            col(Paper.withdrawn_at).is_(None)).order_by(col(Paper.id))
    ).all()
    if req.edition is Edition.daily:  # weekly readers have not seen the dailies
        featured = _recently_featured(session, req.day)
        papers = [p for p in papers if p.arxiv_id not in featured]
    history: dict[int, list[Snapshot]] = defaultdict(list)
    ids = [p.id for p in papers]
    if ids:
        for m in session.exec(select(PaperMetrics).where(col(PaperMetrics.paper_id).in_(ids))):
            history[m.paper_id].append(Snapshot(m.fetched_at, m.upvotes, m.comments, m.github_stars))
    candidates = [Candidate(p.arxiv_id, listed_at(p.submitted_at, p.listed_on), tuple(history[p.id])) for p in papers]  # type: ignore[index]
    return candidates, {p.arxiv_id: p for p in papers}


def rank_day(session: Session, req: RankRequest) -> tuple[list[TrendScore], dict[str, Paper]]:
    candidates, papers = candidates_for(session, req)
    return rank(candidates, now=req.as_of, weights=req.weights), papers


def thumbnail_sizes(session: Session, papers: Iterable[Paper]) -> dict[str, tuple[int, int]]:
    """(width, height) of each stored thumbnail of ``papers``, by digest (the bytes stay in the database)."""
    digests = sorted({p.thumbnail for p in papers if p.thumbnail})
    if not digests:
        return {}
    rows = session.exec(select(Image.digest, Image.width, Image.height).where(col(Image.digest).in_(digests)))
    return {digest: (width, height) for digest, width, height in rows}


def _thumbnail(paper: Paper, sizes: dict[str, tuple[int, int]]) -> dict[str, object] | None:
    if not paper.thumbnail or paper.thumbnail not in sizes:
        return None
    width, height = sizes[paper.thumbnail]
    return {"digest": paper.thumbnail, "width": width, "height": height, "url": paper.thumbnail_url}


def digest_item(position: int, score: TrendScore, paper: Paper,
                thumbnails: dict[str, tuple[int, int]] | None = None) -> dict[str, object]:
    """The frozen form of one ranked paper, as the issue stores and renders it."""
    return {
        "rank": position,
        "arxiv_id": paper.arxiv_id,
        "title": paper.title,
        "authors": list(paper.authors),
        "summary": paper.summary or paper.abstract,
        "abstract": paper.abstract,  # what interests and the reader's model match on, with the keywords
        "keywords": list(paper.keywords),
        "categories": list(paper.categories),
        "url": f"https://huggingface.co/papers/{paper.arxiv_id}",
        "abs_url": f"https://arxiv.org/abs/{paper.arxiv_id}",
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
        "organization": paper.organization,
        "thumbnail": _thumbnail(paper, thumbnails or {}),
        "listed_on": paper.listed_on.isoformat(),
        "published_on": paper.published_at.date().isoformat() if paper.published_at else None,
        "upvotes": score.upvotes,
        "comments": score.comments,
        "github_stars": score.github_stars,
        "score": round(score.score, 6),
        "why": why_trending(score),
        "parts": {
            "upvotes_per_hour": round(score.upvote_part, 6),
            "comments_per_hour": round(score.comment_part, 6),
            "stars": round(score.star_part, 6),
            "decay": round(score.decay, 6),
            "age_hours": round(score.age_hours, 3),
            "measured": score.measured,  # "later": no snapshot by as_of, the first one after it was used
        },
    }


CATCH_UP_DAYS = 6  # a daily issue carries the best of the six before it, for readers who missed them
CARRIED_PER_DAY = 10


def carried(session: Session, day: dt.date, *, own: set[str]) -> list[dict[str, object]]:
    """The best of the daily issues that went out in the ``CATCH_UP_DAYS`` before ``day`` (their top
    ``CARRIED_PER_DAY``), oldest day first, as they were frozen, each marked with its issue's date; never a
    paper of today's own, twice, or one withdrawn since."""
    since = day - dt.timedelta(days=CATCH_UP_DAYS)
    earlier = session.exec(select(col(Issue.date), col(Issue.items)).where(
        Issue.edition == Edition.daily, Issue.date >= since, Issue.date < day,
        col(Issue.send_started_at).is_not(None)).order_by(col(Issue.date))).all()
    found: dict[str, dict[str, object]] = {}
    for date, items in earlier:
        for item in items[:CARRIED_PER_DAY]:
            if item["arxiv_id"] not in own and item["arxiv_id"] not in found:
                found[item["arxiv_id"]] = {**item, "carried_from": date.isoformat()}
    if found:
        withdrawn = set(session.exec(select(Paper.arxiv_id).where(
            col(Paper.arxiv_id).in_(list(found)), col(Paper.withdrawn_at).is_not(None))).all())
        found = {aid: item for aid, item in found.items() if aid not in withdrawn}
    return list(found.values())


def find_issue(session: Session, day: dt.date, edition: Edition = Edition.daily) -> Issue | None:
    return session.exec(select(Issue).where(Issue.date == day, Issue.edition == edition)).first()


def build_issue(
    session: Session,
    *,
    req: RankRequest,
    size: int,
    ctx: DigestContext,
    force: bool = False,
) -> tuple[Issue, bool]:
    """The issue for ``req.day`` and ``req.edition``, built if missing. Returns (issue, built_now).

    An issue is frozen once built; ``force`` rebuilds it, but only while
    nothing has been sent from it.
    """
    existing = find_issue(session, req.day, req.edition)
    if existing is not None and not force:
        return existing, False
    if existing is not None:
        has_deliveries = session.exec(select(Delivery.id).where(Delivery.issue_id == existing.id).limit(1)).first()
        if existing.send_started_at is not None or has_deliveries is not None:
            raise IssueError(f"the {req.edition.value} issue of {req.day} is already being sent; it cannot be rebuilt")
    scores, papers = rank_day(session, req)
    if not scores:
        raise IssueError(f"no papers listed on {req.day}: ingest that day first (papermail ingest --date {req.day})")
    pool = scores[:POOL_SIZE]
    sizes = thumbnail_sizes(session, (papers[s.arxiv_id] for s in pool))
    items = [digest_item(i, s, papers[s.arxiv_id], sizes) for i, s in enumerate(pool, 1)]
    own = {str(item["arxiv_id"]) for item in items}
    catch_up = carried(session, req.day, own=own) if req.edition is Edition.daily else []
    blocks = render_blocks([*items, *catch_up], ctx=ctx)
    subject, html, text = blocks.joined(top(min(size, len(items))))
    issue = existing or Issue(date=req.day, edition=req.edition, as_of=req.as_of, subject="", html="", text="")
    issue.as_of = req.as_of
    issue.size = size
    issue.items = items
    issue.catch_up = catch_up
    issue.subject, issue.html, issue.text = subject, html, text
    issue.blocks = blocks.to_json()
    issue.built_at = utcnow()
    session.add(issue)
    session.flush()
    return issue, True
