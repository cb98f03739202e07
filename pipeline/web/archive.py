"""Past issues, as they were sent, minus anyone's personal links."""

from __future__ import annotations

import datetime as dt
import re

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from pipeline.compose import links as paths
from pipeline.compose import slots
from pipeline.digest.issues import find_issue
from pipeline.models import Edition, Issue
from pipeline.web.deps import SessionDep, SettingsDep
from pipeline.web.openapi_docs import ARCHIVED_ISSUE
from pipeline.web.pages import SECURITY_HEADERS, page

router = APIRouter()

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # fromisoformat alone would take 20250321 too: one URL per issue
ARCHIVE_CACHE = {"Cache-Control": "public, max-age=300"}


def _parse_day(value: str) -> dt.date:
    if not _ISO_DAY.fullmatch(value):
        raise HTTPException(status_code=404)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=404) from None


@router.get(paths.ARCHIVE, response_class=HTMLResponse)
def issue_list(request: Request, session: SessionDep) -> HTMLResponse:
    """Every issue that has started going out, newest first (a built but unsent issue may still change)."""
    issues = session.exec(
        select(Issue).where(col(Issue.send_started_at).is_not(None)).order_by(col(Issue.date).desc(), Issue.edition)
    ).all()
    rows = [{"date": i.date, "edition": i.edition.value, "subject": i.subject, "path": paths.issue_path(i.date, i.edition)} for i in issues]
    return page(request, "issues.html", headers=ARCHIVE_CACHE, issues=rows)


def _issue_page(session: SessionDep, settings: SettingsDep, day: str, edition: Edition) -> HTMLResponse:
    issue = find_issue(session, _parse_day(day), edition)
    if issue is None or issue.send_started_at is None:
        raise HTTPException(status_code=404)
    html = issue.html
    for slot in slots.BODY_SLOTS:  # each reader's own unsubscribe/preferences links are filled in at send time only
        html = html.replace(slot, f"{settings.base_url}/")
    return HTMLResponse(html, headers={**SECURITY_HEADERS, **ARCHIVE_CACHE})


@router.get(paths.ISSUE, response_class=HTMLResponse, responses=ARCHIVED_ISSUE)
def daily_issue(day: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The daily issue of ``day`` (YYYY-MM-DD) as sent."""
    return _issue_page(session, settings, day, Edition.daily)


@router.get(paths.WEEKLY_ISSUE, response_class=HTMLResponse, responses=ARCHIVED_ISSUE)
def weekly_issue(day: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The weekly issue ending on ``day`` as sent."""
    return _issue_page(session, settings, day, Edition.weekly)
