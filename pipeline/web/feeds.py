"""The archive as feeds: the latest sent issues of both editions, in Atom and in JSON Feed."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from pipeline.compose import feeds
from pipeline.compose import links as paths
from pipeline.compose.cards import paper_view
from pipeline.models import Issue, utcnow
from pipeline.settings import Settings
from pipeline.web.archive import ARCHIVE_CACHE, issue_heading
from pipeline.web.deps import SessionDep, SettingsDep
from pipeline.web.openapi_docs import ATOM_FEED, JSON_FEED
from pipeline.web.pages import SECURITY_HEADERS

router = APIRouter()

FEED_SIZE = 20  # issues per feed: about two weeks of dailies and their weeklies
# The mail's HTML and text are most of an issue's row, and a feed shows neither: not loaded at all.
FEED_COLUMNS = [getattr(Issue, name) for name in ("date", "edition", "size", "items", "catch_up", "send_started_at")]


def feed_info(settings: Settings, feed_path: str, *, title: str | None = None) -> feeds.FeedInfo:
    return feeds.FeedInfo(
        title=title or settings.list_name,
        description="The machine-learning papers that are trending, every morning; and the week's, once a week.",
        author=settings.list_name,
        site_url=f"{settings.base_url}{paths.HOME}",
        archive_url=f"{settings.base_url}{paths.ARCHIVE}",
        feed_url=f"{settings.base_url}{feed_path}",
    )


def latest_entries(session: Session, settings: Settings, *, limit: int = FEED_SIZE) -> list[feeds.FeedEntry]:
    """The ``limit`` issues sent last, newest first."""
    issues = session.exec(
        select(Issue).options(load_only(*FEED_COLUMNS))
        .where(col(Issue.send_started_at).is_not(None))
        .order_by(col(Issue.send_started_at).desc(), col(Issue.date).desc(), col(Issue.edition))
        .limit(limit)
    ).all()
    return [issue_entry(settings, issue, size=issue.size) for issue in issues]


def issue_entry(settings: Settings, issue: Issue, *, size: int,
                picks: Sequence[int] | None = None) -> feeds.FeedEntry:
    """An issue as a feed entry showing its first ``size`` papers (the default size, or a reader's own), or the
    candidates ``picks`` names, in that order (a reader's own selection)."""
    assert issue.send_started_at is not None  # only issues that went out are in a feed
    pool = issue.items if picks is None else issue.pool
    shown = pool[:size] if picks is None else [pool[i] for i in picks if 0 <= i < len(pool)]
    heading = issue_heading(issue.date, issue.edition)
    top = paper_view(shown[0])["title"] if shown else None
    return feeds.FeedEntry(
        url=f"{settings.base_url}{paths.issue_path(issue.date, issue.edition)}",
        title=f"{heading}: {top}" if top else heading,
        published=issue.send_started_at,
        items=shown,
    )


def _answer(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=f"{media_type}; charset=utf-8", headers={**SECURITY_HEADERS, **ARCHIVE_CACHE})


@router.get(paths.ATOM_FEED, response_class=Response, responses=ATOM_FEED)
def atom_feed(session: SessionDep, settings: SettingsDep) -> Response:
    """The latest issues as an Atom feed (RFC 4287), newest first."""
    body = feeds.atom_feed(feed_info(settings, paths.ATOM_FEED), latest_entries(session, settings), now=utcnow())
    return _answer(body, feeds.ATOM_TYPE)


@router.get(paths.JSON_FEED, response_class=Response, responses=JSON_FEED)
def json_feed(session: SessionDep, settings: SettingsDep) -> Response:
    """The latest issues as a JSON Feed (version 1.1), newest first."""
    body = feeds.json_feed(feed_info(settings, paths.JSON_FEED), latest_entries(session, settings))
    return _answer(body, feeds.JSON_FEED_TYPE)
