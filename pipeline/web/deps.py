"""What a route needs per request: the settings, one database session, and the subscriber behind a token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from pipeline import service
from pipeline.audience.subscriptions import Resolved, resolve_token
from pipeline.audience.tokens import Purpose
from pipeline.compose.links import Links
from pipeline.errors import InvalidLink
from pipeline.models import Subscriber
from pipeline.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; routes commit explicitly, anything uncommitted is rolled back on close."""
    with Session(service.engine(get_settings(request)), expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(db_session)]


def resolved(session: Session, settings: Settings, *, purpose: Purpose, token: str) -> Resolved:
    """The subscriber a token of ``purpose`` names (and when it was signed), or InvalidLink.

    Confirmation links expire with the pending address they confirm; the
    others never do (people click them in year-old mail).
    """
    max_age = settings.pending_expiry_days * 86400 if purpose is Purpose.confirm else None
    found = resolve_token(session, secret_key=settings.secret_key, purpose=purpose, token=token, max_age=max_age)
    if found is None:
        raise InvalidLink()
    return found


def subscriber_for(session: Session, settings: Settings, *, purpose: Purpose, token: str) -> Subscriber:
    return resolved(session, settings, purpose=purpose, token=token).subscriber


def confirmation_for(session: Session, settings: Settings, *, token: str) -> tuple[Subscriber, dt.datetime | None]:
    """The subscriber a confirmation token names and when it was signed: a link signed before an
    unsubscribe must not undo it."""
    found = resolved(session, settings, purpose=Purpose.confirm, token=token)
    return found.subscriber, found.signed_at


def links(request: Request) -> Links:
    """The site's link builder (one per app, with its signers)."""
    return request.app.state.links
