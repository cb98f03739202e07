"""For the site's tests: subscribers in a given state, stored papers, their tokens, snapshots of the tables,
a mail recorder."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from sqlmodel import Session, select

from pipeline import service
from pipeline.audience.tokens import Purpose, Signer
from pipeline.models import Paper, Subscriber, SubscriberStatus, Vote
from pipeline.settings import Settings

LONG_AGO = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
GENERIC_BAD_LINK = "This link is not valid or has expired"


def add(cfg: Settings, email: str, status: SubscriberStatus = SubscriberStatus.active, **fields: Any) -> Subscriber:
    """A subscriber stored directly, as if its history had already happened (mails sent long ago)."""
    with Session(service.engine(cfg), expire_on_commit=False) as session:
        sub = Subscriber(email=email, status=status, created_at=LONG_AGO, updated_at=LONG_AGO,
                         confirmation_sent_at=LONG_AGO, **fields)
        session.add(sub)
        session.commit()
        return sub


def get(cfg: Settings, email: str) -> Subscriber | None:
    with Session(service.engine(cfg), expire_on_commit=False) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def snapshot(cfg: Settings) -> list[dict[str, Any]]:
    """Every subscriber row, every column."""
    with Session(service.engine(cfg)) as session:
        return [s.model_dump() for s in session.exec(select(Subscriber).order_by(Subscriber.id))]


def add_paper(cfg: Settings, arxiv_id: str, title: str = "A Paper", **fields: Any) -> Paper:
    """A stored paper, as ingest leaves it."""
    with Session(service.engine(cfg), expire_on_commit=False) as session:
        paper = Paper(arxiv_id=arxiv_id, title=title, abstract=fields.pop("abstract", "An abstract."),
                      listed_on=fields.pop("listed_on", LONG_AGO.date()), source="hf", **fields)
        session.add(paper)
        session.commit()
        return paper


def votes(cfg: Settings) -> list[dict[str, Any]]:
    """Every vote row, every column."""
    with Session(service.engine(cfg)) as session:
        return [v.model_dump() for v in session.exec(select(Vote).order_by(Vote.id))]


def token(cfg: Settings, purpose: Purpose, uid: str, *, at: float | None = None) -> str:
    """``uid``'s token for ``purpose``, as if signed at ``at`` (seconds since the epoch; by default now)."""
    when = time.time() if at is None else at
    return Signer(cfg.secret_key, purpose, clock=lambda: when).sign(uid)


def hrefs_and_actions(html: str) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]*)"', html)


class Recorder:
    """A ``send_confirmation`` that notes each id and the status the row had when it was called (was it committed?)."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.ids: list[int] = []
        self.status_seen: list[SubscriberStatus | None] = []

    def __call__(self, subscriber_id: int) -> None:
        with Session(service.engine(self.cfg)) as session:  # a connection of its own: sees committed rows only
            sub = session.get(Subscriber, subscriber_id)
            self.status_seen.append(sub.status if sub else None)
        self.ids.append(subscriber_id)
