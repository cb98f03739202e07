"""A reader's private feed: the digests they were sent, as Atom, at an address only they know.

The preferences page shows the address. It carries a signed "<uid>.<feed generation>"; making a new
address (``POST /p/{token}/feed/renew``) raises the generation, and the old address answers 404, as
any address that names nobody does: the feed says nothing about who exists.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from pipeline.audience.tokens import Purpose, Signer
from pipeline.compose import feeds
from pipeline.compose import links as paths
from pipeline.models import Delivery, DeliveryStatus, Issue, Subscriber, utcnow
from pipeline.models import Selection as SelectionRow
from pipeline.settings import Settings
from pipeline.web.deps import SessionDep, SettingsDep
from pipeline.web.feeds import FEED_COLUMNS, feed_info, issue_entry
from pipeline.web.openapi_docs import READER_FEED
from pipeline.web.pages import SECURITY_HEADERS

router = APIRouter()

FEED_SIZE = 20
PRIVATE = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"}


def reader_for(session: Session, settings: Settings, token: str) -> Subscriber:
    """The subscriber a feed address names, at its current generation; 404 otherwise."""
    value = Signer(settings.secret_key, Purpose.reader_feed).unsign(token) or ""
    uid, _, generation = value.rpartition(".")
    reader = session.exec(select(Subscriber).where(Subscriber.uid == uid)).first() if uid else None
    if reader is None or not generation.isdigit() or reader.feed_generation != int(generation):
        raise HTTPException(status_code=404)
    return reader


def sent_to(session: Session, settings: Settings, reader: Subscriber, *, limit: int = FEED_SIZE) -> list[feeds.FeedEntry]:
    """The issues sent to ``reader``, newest first, each with the papers their copy had."""
    rows = session.exec(
        select(Issue, Delivery.size, SelectionRow.picks).options(load_only(*FEED_COLUMNS))
        .join(Delivery, col(Delivery.issue_id) == col(Issue.id))
        .outerjoin(SelectionRow, col(SelectionRow.id) == col(Delivery.selection_id))
        .where(Delivery.subscriber_id == reader.id, Delivery.status == DeliveryStatus.sent,
               col(Issue.send_started_at).is_not(None))
        .order_by(col(Issue.send_started_at).desc(), col(Issue.id).desc())
        .limit(limit)
    ).all()
    return [issue_entry(settings, issue, size=size, picks=None if picks is None else [p["index"] for p in picks])
            for issue, size, picks in rows]


@router.get(paths.READER_FEED, response_class=Response, responses=READER_FEED)
def reader_feed(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The digests sent to the reader this address belongs to, as an Atom feed (RFC 4287), newest first."""
    reader = reader_for(session, settings, token)
    info = feed_info(settings, paths.READER_FEED.format(token=token), title=f"{settings.list_name}: your digests")
    body = feeds.atom_feed(info, sent_to(session, settings, reader), now=utcnow())
    return Response(body, media_type=f"{feeds.ATOM_TYPE}; charset=utf-8", headers={**SECURITY_HEADERS, **PRIVATE})
