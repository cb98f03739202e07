"""Past issues as pages of the site, from their frozen items: nobody's personal links, the site's own layout.

An issue is public once its sending has started (``send_started_at``); until
then it may still be rebuilt. The pages render ``issue.items[:issue.size]``,
the ranked papers as they were frozen, never the mail's HTML: that carries a
footer addressed to one reader.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from pipeline.compose import links as paths
from pipeline.compose.cards import paper_view
from pipeline.digest.issues import find_issue
from pipeline.models import Edition, Issue
from pipeline.web.deps import SessionDep, SettingsDep
from pipeline.web.openapi_docs import ARCHIVE_LIST, ARCHIVED_ISSUE
from pipeline.web.pages import page

router = APIRouter()

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # fromisoformat alone would take 20250321 too: one URL per issue
ARCHIVE_CACHE = {"Cache-Control": "public, max-age=300"}
PAGE_SIZE = 30  # issues per list page: two editions a day for three years stay small pages
MAX_PAGE = 10_000  # past any real archive; a larger OFFSET overflows SQLite's integers
TOP_TITLES = 3


def _parse_day(value: str) -> dt.date:
    if not _ISO_DAY.fullmatch(value):
        raise HTTPException(status_code=404)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=404) from None


def issue_heading(day: dt.date, edition: Edition) -> str:
    """How an issue is named on the site and in the feeds, as the mail's header names it."""
    return f"{'The week to ' if edition is Edition.weekly else ''}{day:%A, %-d %B %Y}"


def _sent() -> Any:
    return col(Issue.send_started_at).is_not(None)


@router.get(paths.ARCHIVE, response_class=HTMLResponse, responses=ARCHIVE_LIST)
def issue_list(request: Request, session: SessionDep,
               page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE)) -> HTMLResponse:
    """The issues that have started going out, newest first, ``PAGE_SIZE`` a page."""
    rows = session.exec(
        select(col(Issue.date), col(Issue.edition), col(Issue.size), col(Issue.items)).where(_sent())
        .order_by(col(Issue.date).desc(), col(Issue.edition))
        .offset((page_number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)  # one more says whether an older page exists
    ).all()
    if not rows and page_number > 1:
        raise HTTPException(status_code=404)
    issues = []
    for day, edition, size, items in rows[:PAGE_SIZE]:
        path = paths.issue_path(day, edition)
        top = [paper_view(item) for item in items[:min(size, TOP_TITLES)]]
        issues.append({
            "edition": edition.value, "path": path, "heading": issue_heading(day, edition),
            "count": len(items[:size]),
            "top": [(p["title"], f"{path}#p{p['rank']}" if p["rank"] else path) for p in top],
        })
    newer = None if page_number == 1 else paths.ARCHIVE if page_number == 2 else f"{paths.ARCHIVE}?page={page_number - 1}"
    older = f"{paths.ARCHIVE}?page={page_number + 1}" if len(rows) > PAGE_SIZE else None
    return page(request, "issues.html", headers=ARCHIVE_CACHE, issues=issues, newer=newer, older=older)


def _neighbour(session: Session, issue: Issue, *, older: bool) -> dict[str, str] | None:
    """The sent issue of the same edition just before (or after) ``issue``."""
    day = col(Issue.date)
    query = select(day).where(_sent(), Issue.edition == issue.edition)
    query = query.where(day < issue.date).order_by(day.desc()) if older else query.where(day > issue.date).order_by(day)
    found = session.exec(query.limit(1)).first()
    if found is None:
        return None
    return {"path": paths.issue_path(found, issue.edition), "date": f"{found:%-d %b %Y}"}


def _issue_page(request: Request, session: SessionDep, settings: SettingsDep, day: str,
                edition: Edition) -> HTMLResponse:
    issue = find_issue(session, _parse_day(day), edition)
    if issue is None or issue.send_started_at is None:
        raise HTTPException(status_code=404)
    return page(
        request, "issue.html", headers=ARCHIVE_CACHE,
        heading=issue_heading(issue.date, edition), weekly=edition is Edition.weekly,
        # Thumbnails as IMAGES says; a proxied one by its path on this site (site_url="").
        papers=[paper_view(item, images=settings.images, site_url="") for item in issue.items[:issue.size]],
        previous=_neighbour(session, issue, older=True), next=_neighbour(session, issue, older=False),
    )


@router.get(paths.ISSUE, response_class=HTMLResponse, responses=ARCHIVED_ISSUE)
def daily_issue(request: Request, day: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The daily issue of ``day`` (YYYY-MM-DD): its papers as they were sent."""
    return _issue_page(request, session, settings, day, Edition.daily)


@router.get(paths.WEEKLY_ISSUE, response_class=HTMLResponse, responses=ARCHIVED_ISSUE)
def weekly_issue(request: Request, day: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The weekly issue ending on ``day``: its papers as they were sent."""
    return _issue_page(request, session, settings, day, Edition.weekly)
