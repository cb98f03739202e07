"""What a route needs per request: the settings, one database session, and the subscriber behind a token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from pipeline import service
from pipeline.audience.subscriptions import find
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Subscriber
from pipeline.settings import Settings


class InvalidLink(Exception):
    """A token that is tampered, expired, of another purpose, or names nobody: one answer for all of them."""


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; routes commit explicitly, anything uncommitted is rolled back on close."""
    with Session(service.engine(get_settings(request)), expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(db_session)]


def subscriber_for(session: Session, settings: Settings, *, purpose: Purpose, token: str) -> Subscriber:
    """The subscriber a token of ``purpose`` names, or InvalidLink.

    Confirmation links expire with the pending address they confirm; the
    others never do (people click them in year-old mail).
    """
    max_age = settings.pending_expiry_days * 86400 if purpose is Purpose.confirm else None
    uid = Signer(settings.secret_key, purpose).unsign(token, max_age=max_age)
    subscriber = find(session, uid) if uid is not None else None
    if subscriber is None:
        raise InvalidLink()
    return subscriber


def confirmation_for(session: Session, settings: Settings, *, token: str) -> tuple[Subscriber, dt.datetime]:
    """The subscriber a confirmation token names and when it was signed, or InvalidLink.

    The time matters: a link signed before an unsubscribe must not undo it.
    """
    found = Signer(settings.secret_key, Purpose.confirm).unsign_timed(token, max_age=settings.pending_expiry_days * 86400)
    subscriber = find(session, found[0]) if found is not None else None
    if subscriber is None or found is None:
        raise InvalidLink()
    return subscriber, found[1]


def token_for(settings: Settings, *, purpose: Purpose, uid: str) -> str:
    return Signer(settings.secret_key, purpose).sign(uid)
