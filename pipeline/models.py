"""Database tables (SQLModel). Times are stored as naive UTC and read back aware."""

from __future__ import annotations

import datetime as dt
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, TypeDecorator, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(dt.UTC)


def db_time(moment: datetime) -> datetime:
    """A moment as text SQL binds it: naive UTC, as the UTCDateTime columns store it."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return db_time(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _enum(kind: type[StrEnum]) -> SAEnum:
    """Statuses as plain strings (no PostgreSQL enum type), so raw SQL compares them like text."""
    return SAEnum(kind, native_enum=False, length=16, validate_strings=True)


def new_uid() -> str:
    return secrets.token_urlsafe(16)


class Image(SQLModel, table=True):
    """A picture kept by the SHA-256 of its bytes (a paper's thumbnail, re-encoded), served by the site.

    Stored once however many papers or issues show it, never changed: an issue's image stays
    what it was when the issue went out.
    """

    digest: str = Field(primary_key=True, max_length=64)
    content_type: str = Field(max_length=32)
    width: int
    height: int
    data: bytes = Field(sa_type=LargeBinary)
    source_url: str = Field(sa_type=Text)  # where it was fetched from
    created_at: datetime = _when(default_factory=utcnow)


class Paper(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    arxiv_id: str = Field(max_length=40, unique=True, index=True)
    title: str = Field(sa_type=Text)
    abstract: str = Field(sa_type=Text)
    summary: str | None = Field(default=None, sa_type=Text)  # a short summary, when the source has one
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    github_repo: str | None = None
    project_page: str | None = None
    organization: str | None = Field(default=None, max_length=200)  # the lab or company it is listed under
    thumbnail_url: str | None = Field(default=None, sa_type=Text)  # the source's picture of the paper
    thumbnail: str | None = Field(default=None, foreign_key="image.digest", max_length=64)  # our copy of it
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # arXiv's
    published_at: datetime | None = _when(default=None)
    withdrawn_at: datetime | None = _when(default=None)  # set once a source says so: never featured again
    submitted_at: datetime | None = _when(default=None)  # when it entered the daily list
    listed_on: dt.date = Field(index=True)  # the day whose list it belongs to
    source: str = Field(max_length=16)
    first_seen_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class PaperMetrics(SQLModel, table=True):
    """One snapshot of a paper's engagement per fetch: the history behind velocity."""

    __table_args__ = (UniqueConstraint("paper_id", "fetched_at"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    fetched_at: datetime = _when()
    upvotes: int = 0
    comments: int = 0
    github_stars: int | None = None


class SubscriberStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"  # the week's top papers, on the subscriber's weekday


MIN_DIGEST_SIZE, MAX_DIGEST_SIZE = 5, 25


class Subscriber(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)  # normalized
    status: SubscriberStatus = Field(default=SubscriberStatus.pending, sa_type=_enum(SubscriberStatus), index=True)
    uid: str = Field(default_factory=new_uid, max_length=32, unique=True)  # opaque id carried by tokens
    created_at: datetime = _when(default_factory=utcnow)
    confirmed_at: datetime | None = _when(default=None)
    confirmation_sent_at: datetime | None = _when(default=None)
    unsubscribed_at: datetime | None = _when(default=None)
    updated_at: datetime = _when(default_factory=utcnow)
    # Preferences, changed by the subscriber through the link in every email.
    paused: bool = False
    frequency: Frequency = Field(default=Frequency.daily, sa_type=_enum(Frequency))
    weekday: int = Field(default=0, ge=0, le=6)  # weekly mail arrives on this day (0 = Monday)
    digest_size: int | None = None  # papers per email; None = the list's default
    # The reader's interests, each {"kind": category|keyword|author|organization, "value": ..., "mode":
    # include|exclude} (pipeline.audience.interests); none = everything.
    topics: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # How a personal digest orders its papers: 0 by the trend alone, 100 by the reader's model alone.
    mix: int = Field(default=50, ge=0, le=100)
    send_anyway: bool = False  # on a day nothing matches their interests, get the trending list rather than nothing
    # The private feed's address carries this number: making a new address raises it, and the old one is dead.
    feed_generation: int = 0
    # Bounces: permanent failures counted; at BOUNCE_LIMIT the address becomes "bounced" until an operator clears it.
    hard_bounces: int = 0
    last_bounce_at: datetime | None = _when(default=None)
    last_bounce_reason: str | None = Field(default=None, max_length=500)
    # The last time the address was entered in the subscribe form, whatever came of it: every request
    # writes the same row, so the answer takes as long for a subscriber as for a stranger.
    requested_at: datetime | None = _when(default=None)


class Vote(SQLModel, table=True):
    """A reader's "more like this" (+1) or "less like this" (-1) on a paper; a second vote replaces the first."""

    __table_args__ = (UniqueConstraint("subscriber_id", "arxiv_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    arxiv_id: str = Field(max_length=40)
    value: int  # +1 or -1
    voted_at: datetime = _when(default_factory=utcnow)


class ReaderModel(SQLModel, table=True):
    """A reader's relevance model kept between issues, retrained only when their votes or keyword interests
    change (``key``); stored as one coefficient per example (``relevance.Model.basis``), not one weight per word."""

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True)
    key: str = Field(max_length=64)  # sha256 of the votes and keyword interests it was trained on
    basis: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [[ref, a], …]
    trained_at: datetime = _when(default_factory=utcnow)


class SuppressionReason(StrEnum):
    unsubscribed = "unsubscribed"  # the person asked to stop
    bounced = "bounced"  # the address failed BOUNCE_LIMIT times
    removed = "removed"  # erased on request: this record is all that is left of it


class Suppression(SQLModel, table=True):
    """An address that must not be mailed again without its owner's fresh confirmation.

    Kept by a hash of the normalized address, so it outlives the subscriber row (a deletion
    request erases the row, not the promise). Lifted only by the owner confirming a new
    opt-in, or by an operator who holds consent records (``lifted_by`` says which, and why).
    """

    id: int | None = Field(default=None, primary_key=True)
    address_hash: str = Field(max_length=64, unique=True)  # sha256 of the normalized address, hex
    reason: SuppressionReason = Field(sa_type=_enum(SuppressionReason))
    created_at: datetime = _when(default_factory=utcnow)
    lifted_at: datetime | None = _when(default=None)
    lifted_by: str | None = Field(default=None, max_length=100)
    lifted_note: str | None = Field(default=None, max_length=500)


class IssueStatus(StrEnum):
    built = "built"  # ranked and rendered, nothing sent
    sending = "sending"  # deliveries exist; some are not final
    paused = "paused"  # an operator, or a burst of failures, stopped its sending; resume continues it
    finished = "finished"  # every delivery is in a final state


class Edition(StrEnum):
    daily = "daily"  # the papers listed that day
    weekly = "weekly"  # the papers listed in the seven days up to that day


class Issue(SQLModel, table=True):
    """One edition of one day, ranked and rendered once; unique per (date, edition)."""

    __table_args__ = (UniqueConstraint("date", "edition"),)

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date = Field(index=True)
    edition: Edition = Field(default=Edition.daily, sa_type=_enum(Edition))
    status: IssueStatus = Field(default=IssueStatus.built, sa_type=_enum(IssueStatus))
    as_of: datetime = _when()  # the moment the ranking describes
    size: int = 10  # papers in the default rendering (html/text below); items hold every candidate
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(max_length=300)
    html: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    built_at: datetime = _when(default_factory=utcnow)
    send_started_at: datetime | None = _when(default=None)
    finished_at: datetime | None = _when(default=None)
    paused_reason: str | None = Field(default=None, max_length=500)
    # The best of the week's earlier daily issues, for readers who missed them (a daily issue only); frozen as
    # items are, each with "carried_from": the date of the issue it was in. A selection's indices run on
    # from items into these.
    catch_up: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False, server_default="[]"))
    # Every candidate's card (items, then catch_up), cut into blocks once (compose.blocks.IssueBlocks.to_json)
    blocks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))

    @property
    def pool(self) -> list[dict[str, Any]]:
        """Every paper a reader of this issue may get: its own candidates, then the ones carried for catching up."""
        return [*self.items, *self.catch_up]


class Selection(SQLModel, table=True):
    """Which of an issue's candidates some readers get, in their order: one row per distinct selection, shared
    by every delivery that has it (see :mod:`pipeline.delivery.selections`)."""

    __table_args__ = (UniqueConstraint("issue_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    key: str = Field(max_length=64)  # sha256 of the picks
    # [{"index": i, "match": "matches diffusion" | null, "also": bool}, …], best first: indices into issue.items
    picks: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [[arxiv id, trend score], …] of the picks: what a later issue checks "already sent" against
    papers: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    personal: bool = False  # chosen by interests or votes, not the plain top of the ranking
    readers: int = 0


class DeliveryStatus(StrEnum):
    pending = "pending"  # not tried yet
    sending = "sending"  # claimed by a batch holding a lease
    retry = "retry"  # temporary failure; due again at next_attempt_at
    sent = "sent"  # the server answered 2xx after the final "."
    failed = "failed"  # permanent (5xx) failure, reply kept
    uncertain = "uncertain"  # the batch died after claiming it: it may or may not have gone out
    skipped = "skipped"  # the subscriber stopped being active before it was sent


class Delivery(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        Index("ix_delivery_issue_status", "issue_id", "status"),
        Index("ix_delivery_issue_sent_at", "issue_id", "sent_at"),  # the send rate in `status`
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id")
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    size: int = 10  # papers in this subscriber's copy, fixed when the recipients were snapshotted
    selection_id: int | None = Field(default=None, foreign_key="selection.id")  # which papers, in which order
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=_enum(DeliveryStatus))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    smtp_reply: str | None = Field(default=None, max_length=1000)
    message_id: str | None = Field(default=None, max_length=255)
    claim: str | None = Field(default=None, max_length=32)  # which batch run holds it while "sending"
    lease_until: datetime | None = _when(default=None)
    next_attempt_at: datetime | None = _when(default=None)
    resend_id: int | None = Field(default=None, foreign_key="resend.id")  # the last resend that queued it again
    sent_at: datetime | None = _when(default=None)
    updated_at: datetime = _when(default_factory=utcnow)


class ResendScope(StrEnum):
    failed = "failed"  # deliveries that failed (the server refused them, or retries ran out)
    uncertain = "uncertain"  # deliveries that may have been delivered: most were, so most get a second copy
    to = "to"  # named addresses
    all = "all"  # everyone in the issue's snapshot


class Resend(SQLModel, table=True):
    """An operator's resend of an issue: who asked, when, to whom, why. Recorded before anything is sent."""

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    key: str = Field(max_length=64, unique=True)  # the same request submitted twice has the same key
    scope: ResendScope = Field(sa_type=_enum(ResendScope))
    addresses: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=500)
    requested_by: str = Field(max_length=100)
    requested_at: datetime = _when(default_factory=utcnow)
    deliveries: int = 0  # how many deliveries it queued again


class ProcessedBounce(SQLModel, table=True):
    """A bounce message already counted, by its own Message-ID: the same bounce read twice counts once."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=255, unique=True)
    processed_at: datetime = _when()
