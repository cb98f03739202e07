"""Validated papers into the database: upsert Paper, append one PaperMetrics per fetch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from pipeline.errors import IngestError
from pipeline.ingest.records import PaperIn
from pipeline.models import Paper, PaperMetrics, utcnow

CHUNK = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's bind limits


@dataclass
class StoreReport:
    new: int  # papers never seen before
    updated: int  # known papers whose stored fields changed
    snapshots: int  # PaperMetrics rows added


def _changes(row: Paper, paper: PaperIn) -> dict[str, Any]:
    """Fields of ``row`` that ``paper`` should change.

    A source that lacks a field (arXiv has no keywords, no summary) never erases
    what another source gave; ``listed_on``, ``source``, ``submitted_at`` and
    ``first_seen_at`` describe the first sighting and stay.
    """
    wanted: dict[str, Any] = {"title": paper.title}
    if paper.abstract:
        wanted["abstract"] = paper.abstract
    if paper.authors:
        wanted["authors"] = list(paper.authors)
    if paper.keywords:
        wanted["keywords"] = list(paper.keywords)
    if paper.categories:
        wanted["categories"] = list(paper.categories)
    for name in ("summary", "github_repo", "project_page", "organization", "thumbnail_url", "published_at"):
        if (value := getattr(paper, name)) is not None:
            wanted[name] = value
    if wanted.get("thumbnail_url", row.thumbnail_url) != row.thumbnail_url:
        wanted["thumbnail"] = None  # a new picture: fetched again
    if row.submitted_at is None and paper.submitted_at is not None:
        wanted["submitted_at"] = paper.submitted_at
    return {name: value for name, value in wanted.items() if getattr(row, name) != value}


def _new_row(paper: PaperIn, fetched_at: datetime) -> Paper:
    return Paper(
        arxiv_id=paper.arxiv_id,
        title=paper.title,
        abstract=paper.abstract,
        summary=paper.summary,
        authors=list(paper.authors),
        keywords=list(paper.keywords),
        categories=list(paper.categories),
        github_repo=paper.github_repo,
        project_page=paper.project_page,
        organization=paper.organization,
        thumbnail_url=paper.thumbnail_url,
        published_at=paper.published_at,
        submitted_at=paper.submitted_at,
        listed_on=paper.listed_on,
        source=paper.source,
        first_seen_at=fetched_at,
    )


def store_papers(session: Session, *, papers: list[PaperIn], fetched_at: datetime) -> StoreReport:
    """Upsert ``papers`` by arXiv id and record their engagement as of ``fetched_at``.

    Idempotent for a given ``fetched_at``: a (paper, fetched_at) snapshot that exists
    is not added again. A repeated arXiv id in ``papers`` counts once (first wins).
    Flushes but does not commit.
    """
    if fetched_at.tzinfo is None:
        raise IngestError("fetched_at must be an aware datetime")
    first: dict[str, PaperIn] = {}
    for paper in papers:
        first.setdefault(paper.arxiv_id, paper)
    unique = list(first.values())
    report = StoreReport(new=0, updated=0, snapshots=0)
    now = utcnow()
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        rows = {
            row.arxiv_id: row
            for row in session.exec(select(Paper).where(col(Paper.arxiv_id).in_([p.arxiv_id for p in chunk])))
        }
        for paper in chunk:
            row = rows.get(paper.arxiv_id)
            if row is None:
                rows[paper.arxiv_id] = row = _new_row(paper, fetched_at)
                session.add(row)
                report.new += 1
            elif changes := _changes(row, paper):
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = now
                report.updated += 1
        session.flush()  # new rows get their ids

        ids = [rows[p.arxiv_id].id for p in chunk]
        have = set(
            session.exec(
                select(PaperMetrics.paper_id).where(
                    col(PaperMetrics.paper_id).in_(ids), PaperMetrics.fetched_at == fetched_at
                )
            )
        )
        for paper in chunk:
            paper_id = rows[paper.arxiv_id].id
            assert paper_id is not None  # flushed above
            if paper_id in have:
                continue
            session.add(
                PaperMetrics(
                    paper_id=paper_id,
                    fetched_at=fetched_at,
                    upvotes=paper.upvotes,
                    comments=paper.comments,
                    github_stars=paper.github_stars,
                )
            )
            report.snapshots += 1
        session.flush()
    return report


def papers_by_id(session: Session, arxiv_ids: set[str]) -> list[Paper]:
    """The stored papers with these arXiv ids, in id order."""
    ids = sorted(arxiv_ids)
    rows: list[Paper] = []
    for start in range(0, len(ids), CHUNK):
        rows.extend(session.exec(select(Paper).where(col(Paper.arxiv_id).in_(ids[start : start + CHUNK]))))
    return sorted(rows, key=lambda p: p.id or 0)


def mark_withdrawn(session: Session, withdrawn: dict[str, datetime | None], *, seen_at: datetime) -> int:
    """Mark the stored papers among ``withdrawn`` (arXiv id -> when) as withdrawn; how many were newly marked.

    A paper whose withdrawal time is unknown is marked as of ``seen_at``. Flushes but does not commit.
    """
    marked = 0
    for paper in papers_by_id(session, set(withdrawn)):
        if paper.withdrawn_at is None:
            paper.withdrawn_at = withdrawn[paper.arxiv_id] or seen_at
            paper.updated_at = utcnow()
            session.add(paper)
            marked += 1
    session.flush()
    return marked
