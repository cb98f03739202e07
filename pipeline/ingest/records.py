"""Plain records that cross module boundaries: what a source yields, what was skipped."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PaperIn:
    """One validated paper from any source, with the engagement seen at fetch time."""

    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    listed_on: dt.date  # the day whose list the paper belongs to
    source: str  # "hf" | "arxiv" | "file"
    published_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None  # when it entered the daily list
    summary: str | None = None  # a short summary, when the source has one
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # arXiv's, primary first
    github_repo: str | None = None  # only https://github.com/... URLs
    project_page: str | None = None  # only http(s) URLs
    organization: str | None = None  # the lab or company it is listed under
    thumbnail_url: str | None = None  # only https URLs
    upvotes: int = 0
    comments: int = 0
    github_stars: int | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that was not ingested, and why (``ref`` is its id or position)."""

    ref: str
    reason: str


@dataclass(slots=True)
class ParseResult:
    papers: list[PaperIn] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    withdrawn: dict[str, dt.datetime | None] = field(default_factory=dict)  # arXiv id -> when, if it says
    _ids: set[str] = field(default_factory=set, repr=False, compare=False)

    def add(self, paper: PaperIn, *, ref: str, repeats_are_errors: bool = True) -> None:
        """Keep ``paper`` unless its id is already kept: the first occurrence wins, and a
        repeat is skipped as a "duplicate id" (or silently, where repeats are normal)."""
        if paper.arxiv_id in self._ids:
            if repeats_are_errors:
                self.skipped.append(Skipped(ref=ref, reason="duplicate id"))
            return
        self._ids.add(paper.arxiv_id)
        self.papers.append(paper)
