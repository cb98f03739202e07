"""Settings turned into what each stage needs: the engine, the days, the rank weights, the send context."""

from __future__ import annotations

import datetime as dt
import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from pipeline.compose.links import Links
from pipeline.compose.render import DigestContext
from pipeline.db.engine import create_schema, engine_for
from pipeline.delivery.dkim import DkimSigner
from pipeline.delivery.personalize import SendContext
from pipeline.digest.issues import RankRequest, as_of_for
from pipeline.digest.rank import Weights
from pipeline.errors import ConfigError
from pipeline.ingest import files
from pipeline.models import Edition, Frequency, Subscriber, SubscriberStatus
from pipeline.settings import Settings

SAMPLE = "sample"


_schema_lock = threading.Lock()


@lru_cache(maxsize=8)
def _ready_engine(url: str) -> Engine:
    engine = engine_for(url)
    with _schema_lock:  # the CLI's progress thread and the sender may ask at once
        create_schema(engine)  # idempotent: a newcomer never has to run a migration first
    return engine


def engine(settings: Settings) -> Engine:
    return _ready_engine(settings.database_url)


def default_day(now: dt.datetime) -> dt.date:
    """The newest complete day: the daily run sends yesterday's list, which is final by then."""
    return (now - dt.timedelta(days=1)).date()


def sample_day() -> dt.date:
    day = files.day_from_name(files.sample_files()[0])
    assert day is not None
    return day


def weights(settings: Settings, edition: Edition = Edition.daily) -> Weights:
    # A week's digest ranks over the week: velocity over seven days, decay seven times slower.
    stretch = 7 if edition is Edition.weekly else 1
    return Weights(
        upvote=settings.rank_upvote_weight,
        comment=settings.rank_comment_weight,
        star=settings.rank_star_weight,
        half_life_hours=settings.rank_half_life_hours * stretch,
        window_hours=settings.rank_window_hours * stretch,
    )


def rank_request(settings: Settings, *, day: dt.date, now: dt.datetime,
                 edition: Edition = Edition.daily) -> RankRequest:
    return RankRequest(
        day=day,
        as_of=as_of_for(day, send_hour=settings.send_hour, now=now),
        weights=weights(settings, edition),
        candidate_days=settings.rank_candidate_days,
        edition=edition,
    )


def digest_context(settings: Settings, day: dt.date, edition: Edition = Edition.daily) -> DigestContext:
    return DigestContext(
        list_name=settings.list_name,
        issue_date=day,
        archive_url=Links(base_url=settings.base_url, secret_key=settings.secret_key).issue(day, edition),
        site_url=settings.base_url,
        list_address=settings.from_address.addr_spec,
        weekly=edition is Edition.weekly,
        images=settings.images,
    )


def editions_due(settings: Settings, *, day: dt.date) -> list[Edition]:
    """The daily edition always; the weekly one when someone wants it on the day it would be sent."""
    sent_on = (day + dt.timedelta(days=1)).weekday()
    with Session(engine(settings)) as session:
        weekly = session.exec(select(Subscriber.id).where(
            Subscriber.status == SubscriberStatus.active, Subscriber.frequency == Frequency.weekly,
            Subscriber.weekday == sent_on).limit(1)).first()
    return [Edition.daily] + ([Edition.weekly] if weekly is not None else [])


@lru_cache(maxsize=4)
def _dkim(domain: str, selector: str, key_file: Path) -> DkimSigner:
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read DKIM_PRIVATE_KEY_FILE {key_file}: {exc.strerror}") from exc
    return DkimSigner(domain=domain, selector=selector, private_key=key)


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The DKIM signer when DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE are set."""
    if settings.dkim_selector is None or settings.dkim_private_key_file is None:
        return None
    return _dkim(settings.mail_domain, settings.dkim_selector, settings.dkim_private_key_file)


def journal_dir(settings: Settings) -> Path:
    """Where senders journal their replies: JOURNAL_DIR, or 'journal' beside the outbox."""
    return settings.journal_dir or settings.outbox_dir.parent / "journal"


def send_context(settings: Settings) -> SendContext:
    return SendContext(
        envelope_from=settings.from_address.addr_spec,
        sender_header=settings.from_address,
        list_id=settings.list_id,
        list_name=settings.list_name,
        base_url=settings.base_url,
        mail_domain=settings.mail_domain,
        unsubscribe_mailbox=settings.unsubscribe_mailbox,
        secret_key=settings.secret_key,
        claim_size=settings.claim_size,
        lease_seconds=settings.lease_seconds,
        ledger_write_every=settings.ledger_write_every,
        ledger_write_seconds=settings.ledger_write_seconds,
        journal_dir=journal_dir(settings),
        retry_base_seconds=settings.retry_base_seconds,
        max_attempts=settings.max_attempts,
        failure_burst_limit=settings.failure_burst_limit,
        bounce_limit=settings.bounce_limit,
    )
