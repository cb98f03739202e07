"""The daily job's steps: ingest a source, build an issue, start sending it, send a range, close it."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from pipeline import __version__
from pipeline.compose import links as paths
from pipeline.db.engine import session_scope
from pipeline.delivery import selections
from pipeline.delivery.batch import BatchResult, send_batch
from pipeline.delivery.ledger import close_if_done, open_deliveries, plan_batches
from pipeline.delivery.messengers import open_messenger
from pipeline.delivery.pacing import pacer_for
from pipeline.digest.issues import build_issue, find_issue
from pipeline.errors import DayNotAvailable, DeliveryError, IngestError, IssueError
from pipeline.ingest import arxiv, files, hf
from pipeline.ingest.records import ParseResult, Skipped
from pipeline.ingest.store import mark_withdrawn, papers_by_id, store_papers
from pipeline.ingest.thumbnails import find_image, store_thumbnails
from pipeline.models import Edition, Issue, utcnow
from pipeline.service.context import (
    SAMPLE,
    digest_context,
    dkim_signer,
    editions_due,
    engine,
    rank_request,
    sample_day,
    send_context,
)
from pipeline.service.runner import Runner
from pipeline.settings import Settings

log = logging.getLogger(__name__)

NETWORK_SOURCES = ("hf", "arxiv")


@dataclass(slots=True)
class IngestSummary:
    source: str
    day: dt.date
    fetches: int = 0
    new: int = 0
    updated: int = 0
    snapshots: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    withdrawn: int = 0  # stored papers newly marked withdrawn
    thumbnails: int = 0  # thumbnails fetched and kept
    thumbnails_skipped: list[Skipped] = field(default_factory=list)


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
        if path.is_dir():  # an archive of fetches: this day's, oldest first
            found = [f for f in files.snapshot_files(path) if files.day_from_name(f) == day]
            if not found:
                raise IngestError(f"{path} holds no snapshot of {day}")
            return [(files.fetched_at_from_name(f) or now, files.parse_file(f, day=day)) for f in found]
        return [(files.fetched_at_from_name(path) or now, files.parse_file(path, day=day))]
    if source not in NETWORK_SOURCES:
        raise IngestError(f"unknown source {source!r}: use hf, arxiv, sample or file:PATH")
    assert client is not None  # ingest opens one for a network source
    if source == "hf":
        pages = hf.fetch_day(client, api_url=settings.hf_api_url, day=day, retries=settings.http_retries)
        return [(now, hf.parse_day(pages, day=day))]
    feeds = arxiv.fetch_categories(
        client, api_url=settings.arxiv_api_url, categories=settings.arxiv_categories, day=day,
        retries=settings.http_retries,
    )
    return [(now, arxiv.parse_feeds(feeds, day=day))]


def ingest(
    settings: Settings, *, day: dt.date, source: str, client: httpx.Client | None = None,
    now: dt.datetime | None = None,
) -> IngestSummary:
    """Fetch, parse and store one source's papers for ``day``; malformed records are skipped and reported.

    From a network source, the papers' thumbnails are fetched too (unless ``IMAGES=off``); a saved
    file is the offline source, and nothing is fetched for it.
    """
    now = now or utcnow()
    summary = IngestSummary(source=source, day=day)
    owned = client is None and source in NETWORK_SOURCES
    if owned:
        client = _http_client(settings)
    try:
        fetches = _parse_source(settings, day=day, source=source, client=client, now=now)
        with session_scope(engine(settings)) as session:
            for fetched_at, parsed in sorted(fetches, key=lambda f: f[0]):
                report = store_papers(session, papers=parsed.papers, fetched_at=fetched_at)
                summary.fetches += 1
                summary.new += report.new
                summary.updated += report.updated
                summary.snapshots += report.snapshots
                summary.skipped.extend(parsed.skipped)
                summary.withdrawn += mark_withdrawn(session, parsed.withdrawn, seen_at=fetched_at)
            if client is not None and source in NETWORK_SOURCES and settings.images != "off":
                ids = {p.arxiv_id for _, parsed in fetches for p in parsed.papers}
                summary.thumbnails, summary.thumbnails_skipped = store_thumbnails(
                    session, client, papers_by_id(session, ids), hosts=settings.thumbnail_hosts,
                    timeout=settings.http_timeout)
    finally:
        if owned and client is not None:
            client.close()
    # The same broken record in every snapshot is one problem, reported once.
    summary.skipped = list(dict.fromkeys(summary.skipped))
    return summary


# Today's list, still filling; yesterday's, which the next daily run sends; and the two before, whose
# papers are still gaining: what the backtest judges a day's ranking against (3 days after it went out).
SNAPSHOT_DAYS = 4


def snapshot(settings: Settings, *, now: dt.datetime | None = None,
             client: httpx.Client | None = None) -> list[IngestSummary]:
    """Fetch the recent Hugging Face lists (today's and the three before) once more, so that velocity is
    measured between real fetches a few hours apart and the backtest can see what papers gained after
    their issue went out; a list not open yet is passed over."""
    now = now or utcnow()
    summaries = []
    for back in range(SNAPSHOT_DAYS):
        day = (now - dt.timedelta(days=back)).date()
        try:
            summaries.append(ingest(settings, day=day, source="hf", client=client, now=now))
        except DayNotAvailable:
            log.info("no Hugging Face list for %s yet", day)
    return summaries


def ingest_history(settings: Settings, directory: Path,
                   started: Callable[[int], None] | None = None) -> Iterator[IngestSummary]:
    """Every snapshot file in ``directory`` (``hf_daily_papers_<day>_<HHMM>Z.json``), day by day, each day's
    fetches oldest first: an archive of past fetches becomes the papers' engagement history. Yields each
    day's summary once it is stored; ``started(days)`` is told how many there are first."""
    days = sorted({day for f in files.snapshot_files(directory) if (day := files.day_from_name(f))})
    if started is not None:
        started(len(days))
    for day in days:
        yield ingest(settings, day=day, source=f"file:{directory}")


def stored_images(settings: Settings) -> Callable[[str], tuple[bytes, str] | None]:
    """Answers for the site's image addresses from the database, for a page rendered away from the site."""
    prefix = f"{settings.base_url}{paths.IMAGE.format(name='')}"

    def lookup(url: str) -> tuple[bytes, str] | None:
        if not url.startswith(prefix):
            return None
        with Session(engine(settings)) as session:
            image = find_image(session, url.removeprefix(prefix))
            return (image.data, image.content_type) if image else None

    return lookup


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
    """Snapshot the recipients (first call only), decide what each new one gets, plan the open batches."""
    now = now or utcnow()
    with session_scope(engine(settings)) as session:
        issue = issue_for(session, day, edition)
        open_deliveries(session, issue=issue, now=now, default_size=settings.digest_size)
        selections.assign(session, issue=issue, now=now)
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
        result = send_batch(engine(settings), issue_id=issue_id, after_id=after_id, upto_id=upto_id,
                            messenger=messenger, ctx=send_context(settings), pacer=pacer)
    finally:
        messenger.close()
    log.info("batch (%s, %s] of issue %s: %s sent, %s to retry, %s failed, %s uncertain, %s skipped; seconds %s",
             after_id, upto_id, issue_id, result.sent, result.temporary, result.permanent, result.uncertain,
             result.skipped, ", ".join(f"{stage} {s:.3f}" for stage, s in result.seconds.items()),
             extra={"batch_result": result})
    return result


# Waits before the same batch tries the server again when it cannot be reached at all: about two minutes
# in all, then the task is retried later. The worker stays on this batch meanwhile (prefetch 1), so the other
# queued batches wait their turn instead of each failing at once and going to the back of the queue.
CONNECT_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)


def send_range_patiently(settings: Settings, *, issue_id: int, after_id: int, upto_id: int,
                         waits: Sequence[float] = CONNECT_WAITS,
                         sleep: Callable[[float], None] = time.sleep) -> BatchResult:
    """``send_range``, trying the same batch again after short, growing waits while the server is unreachable.

    Bad credentials (a lasting DeliveryError) are not waited on: they paused the issue already.
    """
    for wait in waits:
        try:
            return send_range(settings, issue_id=issue_id, after_id=after_id, upto_id=upto_id)
        except DeliveryError as exc:
            if exc.lasting:
                raise
            log.warning("batch (%s, %s] of issue %s: %s; trying again in %.0f s", after_id, upto_id, issue_id,
                        exc, wait)
            sleep(wait)
    return send_range(settings, issue_id=issue_id, after_id=after_id, upto_id=upto_id)  # the last try: errors go up


def is_stale(settings: Settings, *, day: dt.date, now: dt.datetime) -> bool:
    """A scheduled run for ``day`` this long after its send time is skipped (sent late, it would surprise)."""
    due = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(settings.send_hour), tzinfo=dt.UTC)
    return now - due > dt.timedelta(hours=settings.stale_after_hours)


def finish(settings: Settings, *, issue_id: int) -> bool:
    with session_scope(engine(settings)) as session:
        return close_if_done(session, issue_id=issue_id, now=utcnow())


def dispatch(settings: Settings, *, day: dt.date, edition: Edition, runner: Runner) -> int:
    """Start sending an issue and hand its batches to ``runner``; returns how many batches there were."""
    issue_id, batches = start_sending(settings, day=day, edition=edition)
    runner.send_batches(issue_id=issue_id, batches=batches)
    finish(settings, issue_id=issue_id)  # nothing to send at all: closed now, not by a batch
    return len(batches)


class DayReport(Protocol):
    """What the daily chain tells whoever watches it (the CLI prints each step)."""

    def ingested(self, summary: IngestSummary) -> None: ...

    def built(self, issue: Issue, built: bool) -> None: ...

    def sent(self, issue: Issue) -> None: ...


class _Quiet:
    def ingested(self, summary: IngestSummary) -> None:
        pass

    def built(self, issue: Issue, built: bool) -> None:
        pass

    def sent(self, issue: Issue) -> None:
        pass


def run_day(settings: Settings, *, day: dt.date, source: str, runner: Runner, report: DayReport | None = None) -> None:
    """The daily job, written once for every runner: ingest, then for each edition due build it and send it.

    Each step is idempotent (papers upserted, an issue built once per day and edition, deliveries
    snapshotted once), so running the day again sends nothing twice.
    """
    report = report or _Quiet()
    report.ingested(ingest(settings, day=day, source=source))
    for edition in editions_due(settings, day=day):
        issue, built = build(settings, day=day, edition=edition)
        report.built(issue, built)
        runner.send_issue(day=day, edition=edition)
        report.sent(issue)
