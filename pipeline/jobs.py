"""The daily job's steps as the CLI and the Celery tasks call them.

This is the edge: each step takes ``Settings``, opens what it needs (database,
HTTP client, messenger) and calls the pure-ish pipeline functions with plain
arguments. Steps take ids and dates, never live objects, so a task that is
redelivered simply runs its step again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from pipeline import __version__, inbound
from pipeline.db import create_schema, engine_for, session_scope
from pipeline.dispatch import (
    BatchResult,
    SendContext,
    archive_url,
    close_if_done,
    delivery_counts,
    open_deliveries,
    pause_issue,
    plan_batches,
    recover_stale_claims,
    resume_issue,
    send_batch,
    under_way,
)
from pipeline.dkim_signing import DkimSigner
from pipeline.errors import ConfigError, DeliveryError, IngestError, IssueError
from pipeline.inbound import Handled
from pipeline.ingest import arxiv, files, hf
from pipeline.ingest.store import store_papers
from pipeline.issues import RankRequest, as_of_for, build_issue, ensure_variants, find_issue
from pipeline.mailboxes import take_new
from pipeline.messengers import open_messenger
from pipeline.models import (
    Delivery,
    Edition,
    Frequency,
    Issue,
    IssueStatus,
    Resend,
    ResendScope,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from pipeline.pacing import pacer_for
from pipeline.rank import Weights
from pipeline.records import ParseResult, Skipped
from pipeline.render import DigestContext, render_confirmation
from pipeline.resend import ResendPlan, plan_resend
from pipeline.resend import resend as resend_issue
from pipeline.settings import Settings
from pipeline.subscribers import UnsendableAddress, sendable_address
from pipeline.subscriptions import Expiry, awaiting_confirmation, expire_pending
from pipeline.tokens import Purpose, Signer

log = logging.getLogger(__name__)

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
        archive_url=archive_url(settings.base_url, day, edition),
        site_url=settings.base_url,
        list_address=settings.from_address.addr_spec,
        weekly=edition is Edition.weekly,
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
        retry_base_seconds=settings.retry_base_seconds,
        max_attempts=settings.max_attempts,
        failure_burst_limit=settings.failure_burst_limit,
        bounce_limit=settings.bounce_limit,
    )


# --- ingest -----------------------------------------------------------------------------------


@dataclass(slots=True)
class IngestSummary:
    source: str
    day: dt.date
    fetches: int = 0
    new: int = 0
    updated: int = 0
    snapshots: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def _http_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=settings.http_timeout,
        headers={"User-Agent": f"papermail/{__version__} (+{settings.base_url})"},
        follow_redirects=True,
    )


def _parse_source(
    settings: Settings, *, day: dt.date, source: str, client: httpx.Client | None, now: dt.datetime
) -> list[tuple[dt.datetime, ParseResult]]:
    """(fetched_at, parsed records) per fetch of the source."""
    if source == SAMPLE:
        if day != sample_day():
            raise IngestError(f"the bundled sample holds the papers of {sample_day()} only, not {day}")
        return [(files.fetched_at_from_name(p) or now, files.parse_file(p, day=day)) for p in files.sample_files()]
    if source.startswith("file:"):
        path = Path(source.removeprefix("file:"))
        return [(files.fetched_at_from_name(path) or now, files.parse_file(path, day=day))]
    if source not in ("hf", "arxiv"):
        raise IngestError(f"unknown source {source!r}: use hf, arxiv, sample or file:PATH")
    owned = client is None
    client = client or _http_client(settings)
    try:
        if source == "hf":
            pages = hf.fetch_day(client, api_url=settings.hf_api_url, day=day, retries=settings.http_retries)
            return [(now, hf.parse_day(pages, day=day))]
        feeds = arxiv.fetch_categories(
            client, api_url=settings.arxiv_api_url, categories=settings.arxiv_categories, day=day,
            retries=settings.http_retries,
        )
        return [(now, arxiv.parse_feeds(feeds, day=day))]
    finally:
        if owned:
            client.close()


def ingest(
    settings: Settings, *, day: dt.date, source: str, client: httpx.Client | None = None,
    now: dt.datetime | None = None,
) -> IngestSummary:
    """Fetch, parse and store one source's papers for ``day``; malformed records are skipped and reported."""
    now = now or utcnow()
    summary = IngestSummary(source=source, day=day)
    fetches = _parse_source(settings, day=day, source=source, client=client, now=now)
    with session_scope(engine(settings)) as session:
        for fetched_at, parsed in sorted(fetches, key=lambda f: f[0]):
            report = store_papers(session, papers=parsed.papers, fetched_at=fetched_at)
            summary.fetches += 1
            summary.new += report.new
            summary.updated += report.updated
            summary.snapshots += report.snapshots
            summary.skipped.extend(parsed.skipped)
    # The same broken record in every snapshot is one problem, reported once.
    summary.skipped = list(dict.fromkeys(summary.skipped))
    return summary


# --- build and send ---------------------------------------------------------------------------


def build(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily, now: dt.datetime | None = None,
          force: bool = False) -> tuple[Issue, bool]:
    now = now or utcnow()
    try:
        with session_scope(engine(settings)) as session:
            return build_issue(
                session,
                req=rank_request(settings, day=day, now=now, edition=edition),
                size=settings.digest_size,
                ctx=digest_context(settings, day, edition),
                force=force,
            )
    except IntegrityError:
        # Another process (a second beat, say) built the same day's issue a moment earlier: use that one.
        with Session(engine(settings), expire_on_commit=False) as session:
            return issue_for(session, day, edition), False


def issue_for(session: Session, day: dt.date, edition: Edition = Edition.daily) -> Issue:
    issue = find_issue(session, day, edition)
    if issue is None:
        flag = "" if edition is Edition.daily else f" --edition {edition.value}"
        raise IssueError(f"there is no {edition.value} issue for {day}: build it first "
                         f"(papermail build --date {day}{flag})")
    return issue


def start_sending(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily,
                  now: dt.datetime | None = None) -> tuple[int, list[tuple[int, int]]]:
    """Snapshot the recipients (first call only), render the sizes they chose, plan the open batches."""
    now = now or utcnow()
    with session_scope(engine(settings)) as session:
        issue = issue_for(session, day, edition)
        if open_deliveries(session, issue=issue, now=now, default_size=settings.digest_size):
            sizes = set(session.exec(select(Delivery.size).where(Delivery.issue_id == issue.id).distinct()).all())
            ensure_variants(session, issue=issue, sizes=sizes, ctx=digest_context(settings, day, edition))
        assert issue.id is not None
        return issue.id, plan_batches(session, issue_id=issue.id, size=settings.send_batch_size)


def send_range(settings: Settings, *, issue_id: int, after_id: int, upto_id: int) -> BatchResult:
    """One batch over one messenger (one SMTP connection)."""
    with Session(engine(settings)) as session:
        issue = session.get(Issue, issue_id)
        if issue is None:
            raise IssueError(f"there is no issue with id {issue_id}")
        folder = issue.date.isoformat() + ("-weekly" if issue.edition is Edition.weekly else "")
    messenger = open_messenger(
        smtp_url=settings.smtp_url, outbox=settings.outbox_dir, folder=folder, timeout=settings.smtp_timeout,
        dkim=dkim_signer(settings),
    )
    try:
        pacer = pacer_for(per_second=settings.send_rate_per_second, per_hour=settings.send_rate_per_hour,
                          storage_uri=settings.rate_limit_storage)
        return send_batch(engine(settings), issue_id=issue_id, after_id=after_id, upto_id=upto_id,
                          messenger=messenger, ctx=send_context(settings), pacer=pacer)
    finally:
        messenger.close()


def pause(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily, reason: str) -> bool:
    """Stop an issue's sending (batches stop after the message in hand). False if it was not sending."""
    with Session(engine(settings)) as session:
        issue_id = issue_for(session, day, edition).id
    with engine(settings).connect() as conn:
        return pause_issue(conn, issue_id=issue_id, reason=reason)  # type: ignore[arg-type]


def resume(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily) -> bool:
    """Let a paused issue send again; the caller dispatches its open deliveries."""
    with Session(engine(settings)) as session:
        issue_id = issue_for(session, day, edition).id
    with engine(settings).connect() as conn:
        return resume_issue(conn, issue_id=issue_id)  # type: ignore[arg-type]


def is_stale(settings: Settings, *, day: dt.date, now: dt.datetime) -> bool:
    """A scheduled run for ``day`` this long after its send time is skipped (sent late, it would surprise)."""
    due = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(settings.send_hour), tzinfo=dt.UTC)
    return now - due > dt.timedelta(hours=settings.stale_after_hours)


def finish(settings: Settings, *, issue_id: int) -> bool:
    with session_scope(engine(settings)) as session:
        return close_if_done(session, issue_id=issue_id, now=utcnow())


# --- subscriptions ----------------------------------------------------------------------------


def confirm_url(settings: Settings, uid: str) -> str:
    return f"{settings.base_url}/confirm/{Signer(settings.secret_key, Purpose.confirm).sign(uid)}"


def confirmation_message(settings: Settings, *, email: str, uid: str) -> bytes:
    rendered = render_confirmation(
        list_name=settings.list_name, confirm_url=confirm_url(settings, uid),
        list_address=settings.from_address.addr_spec, expiry_days=settings.pending_expiry_days,
    )
    msg = EmailMessage(policy=SMTP)
    msg["From"] = settings.from_address
    msg["To"] = email
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=settings.mail_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")  # RFC 2046: the preferred part last
    return msg.as_bytes()


def send_confirmation(settings: Settings, *, subscriber_id: int) -> str | None:
    """Mail the double opt-in link to a pending subscriber. Returns the server's reply, or None if not due."""
    with Session(engine(settings)) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or not awaiting_confirmation(subscriber):
            return None  # confirmed, unsubscribed or forgotten since it was queued
        uid = subscriber.uid
        try:
            email = sendable_address(subscriber.email)
        except UnsendableAddress as exc:  # stored by an earlier version; a new one is refused at the form
            log.warning("no confirmation sent to subscriber %s: %s", subscriber_id, exc)
            return None
    messenger = open_messenger(smtp_url=settings.smtp_url, outbox=settings.outbox_dir, folder="confirmations",
                               timeout=settings.smtp_timeout, dkim=dkim_signer(settings))
    try:
        result = messenger.send_message(sender=settings.from_address.addr_spec, rcpt=email,
                                        message=confirmation_message(settings, email=email, uid=uid))
    finally:
        messenger.close()
    if result.outcome == "temporary":
        raise DeliveryError(f"confirmation to {email} not accepted yet: {result.reply}")
    return result.reply


def housekeeping(settings: Settings, *, now: dt.datetime | None = None) -> Expiry:
    """Daily upkeep: forget addresses that never confirmed (a row that fails is reported, not fatal)."""
    with session_scope(engine(settings)) as session:
        return expire_pending(session, now=now or utcnow(), max_age=dt.timedelta(days=settings.pending_expiry_days))


def handle_inbound(settings: Settings, raw: bytes, *, record: bool = True) -> Handled:
    """One incoming message (a bounce, a mailed unsubscribe request, or other mail), in a transaction
    of its own: a run that stops half-way keeps what it recorded. ``record=False`` is a dry run."""
    with Session(engine(settings)) as session:
        handled = inbound.handle(session, raw, secret_key=settings.secret_key, mail_domain=settings.mail_domain,
                                 bounce_limit=settings.bounce_limit, now=utcnow())
        if record:
            session.commit()
        else:
            session.rollback()
    return handled


def read_inbound(settings: Settings) -> Counter[str]:
    """Handle the new messages of INBOUND_MAILDIR and file each in ``cur/`` once recorded.
    Returns how many of each kind ("bounce", "unsubscribe", "other")."""
    kinds: Counter[str] = Counter()
    if settings.inbound_maildir is None:
        return kinds
    for raw, file_away in take_new(settings.inbound_maildir):
        kinds[handle_inbound(settings, raw).kind] += 1
        file_away()
    return kinds


# --- operators --------------------------------------------------------------------------------


def resend(
    settings: Settings, *, day: dt.date, edition: Edition = Edition.daily, scope: ResendScope,
    addresses: list[str] = (), reason: str, requested_by: str, dry_run: bool = False,
) -> tuple[Resend | None, ResendPlan]:
    """Record a resend and queue its deliveries (the caller dispatches), or only plan it with ``dry_run``."""
    try:
        with session_scope(engine(settings)) as session:
            issue = issue_for(session, day, edition)
            if dry_run:
                return None, plan_resend(session, issue=issue, scope=scope, addresses=addresses)
            record, plan = resend_issue(session, issue=issue, scope=scope, addresses=addresses, reason=reason,
                                        requested_by=requested_by, now=utcnow(), default_size=settings.digest_size)
            if record is not None:
                sizes = {sub.digest_size or settings.digest_size for _, sub in plan.targets}
                ensure_variants(session, issue=issue, sizes=sizes, ctx=digest_context(settings, day, edition))
            return record, plan
    except IntegrityError:
        raise IssueError("the same resend was submitted a moment ago; nothing more was queued") from None


def progress(settings: Settings, *, day: dt.date, edition: Edition = Edition.daily,
             now: dt.datetime | None = None) -> dict[str, object]:
    """Counts per state, the send rate over the last minute and an estimate of the time left."""
    now = now or utcnow()
    with Session(engine(settings)) as session:
        issue = issue_for(session, day, edition)
        counts = delivery_counts(session, issue_id=issue.id)  # type: ignore[arg-type]
        recent = session.exec(select(func.count()).select_from(Delivery).where(
            Delivery.issue_id == issue.id, Delivery.sent_at >= now - dt.timedelta(minutes=1))).one()  # type: ignore[operator]
    open_count = counts["pending"] + counts["sending"] + counts["retry"]
    # Over the last minute, or over the time since sending started when that is shorter.
    started = issue.send_started_at.replace(tzinfo=dt.UTC) if issue.send_started_at else now
    rate = recent / min(60.0, max(1.0, (now - started).total_seconds()))
    eta = dt.timedelta(seconds=round(open_count / rate)) if rate and open_count else None
    return {"issue": issue, "counts": counts, "open": open_count, "rate": rate, "eta": eta}


def reconcile(settings: Settings, *, now: dt.datetime | None = None) -> list[tuple[int, list[tuple[int, int]]]]:
    """The periodic sweep: settle abandoned claims, close finished issues, and plan batches for every
    sending issue that has deliveries due. Returns (issue, batches).

    While a send is under way (a live claim, or ledger writes within LEASE_SECONDS) only retries that
    came due are planned: its own queued batches will reach the pending rows. An issue nobody works
    on (its tasks were lost with a broker's data, say) gets batches for all its open rows again.
    """
    now = now or utcnow()
    quiet = dt.timedelta(seconds=settings.lease_seconds)
    plans = []
    with session_scope(engine(settings)) as session:
        for issue in session.exec(select(Issue).where(Issue.status == IssueStatus.sending)).all():
            issue_id: int = issue.id  # type: ignore[assignment]
            recover_stale_claims(session, issue_id=issue_id, now=now)
            busy = under_way(session, issue_id=issue_id, now=now, quiet_for=quiet)
            batches = plan_batches(session, issue_id=issue_id, size=settings.send_batch_size, due_by=now,
                                   pending=not busy)
            if batches:
                plans.append((issue_id, batches))
            else:
                close_if_done(session, issue_id=issue_id, now=now)
    return plans
