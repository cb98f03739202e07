"""Thin tasks: each opens nothing itself, calls one ``pipeline.jobs`` step, maps errors to retries.

Work is named by ids and dates so a redelivered task re-reads the database.
Completion is counted in the database (``jobs.finish`` after every batch), not
with a chord.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task, chain

from pipeline import jobs
from pipeline.errors import DayNotAvailable, DeliveryError, IngestError
from pipeline.models import Edition, utcnow
from pipeline.settings import get_settings
from workers.app import app

log = logging.getLogger(__name__)
RETRY_DELAY = 600  # seconds; below the broker's visibility timeout


def _day(value: str | None) -> dt.date:
    return dt.date.fromisoformat(value) if value else jobs.default_day(utcnow())


def _retry_or_raise(task: Task, exc: Exception) -> None:
    if task.request.is_eager:  # in-process: the caller reports the error
        raise exc
    raise task.retry(exc=exc, countdown=RETRY_DELAY, max_retries=6)


@app.task(name="papermail.ingest", bind=True)
def ingest(self: Task, day: str, source: str = "hf") -> dict:
    try:
        summary = jobs.ingest(get_settings(), day=_day(day), source=source)
    except (DayNotAvailable, IngestError) as exc:
        _retry_or_raise(self, exc)
    return {
        "day": summary.day.isoformat(), "source": source, "new": summary.new, "updated": summary.updated,
        "snapshots": summary.snapshots, "skipped": [[s.ref, s.reason] for s in summary.skipped],
    }


@app.task(name="papermail.build")
def build(day: str, edition: str = "daily") -> dict:
    issue, built = jobs.build(get_settings(), day=_day(day), edition=Edition(edition))
    return {"id": issue.id, "built": built}


@app.task(name="papermail.dispatch")
def dispatch(day: str, edition: str = "daily") -> int:
    issue_id, batches = jobs.start_sending(get_settings(), day=_day(day), edition=Edition(edition))
    for after_id, upto_id in batches:
        send_batch.delay(issue_id, after_id, upto_id)
    jobs.finish(get_settings(), issue_id=issue_id)
    return len(batches)


@app.task(name="papermail.editions")
def editions(day: str) -> list[str]:
    """Build and send each edition due for the day (daily; weekly when someone reads it then)."""
    due = jobs.editions_due(get_settings(), day=_day(day))
    for edition in due:
        chain(build.si(day, edition.value), dispatch.si(day, edition.value)).delay()
    return [e.value for e in due]


@app.task(name="papermail.send_batch", bind=True)
def send_batch(self: Task, issue_id: int, after_id: int, upto_id: int) -> dict:
    try:
        result = jobs.send_range(get_settings(), issue_id=issue_id, after_id=after_id, upto_id=upto_id)
    except DeliveryError as exc:
        _retry_or_raise(self, exc)
    jobs.finish(get_settings(), issue_id=issue_id)
    return {"sent": result.sent, "temporary": result.temporary, "permanent": result.permanent}


@app.task(name="papermail.run")
def run(day: str | None = None, source: str = "hf", scheduled: bool = False) -> str:
    """The daily job: ingest -> for each edition due: build -> fan out the send batches.

    A scheduled run that starts long after its send time (workers were down) is
    skipped rather than mailing yesterday's news late; an operator can still run it.
    """
    when = _day(day)
    if scheduled and jobs.is_stale(get_settings(), day=when, now=utcnow()):
        log.warning("skipping the stale scheduled run for %s; run it by hand if it should still go out", when)
        return "stale"
    chain(ingest.si(when.isoformat(), source), editions.si(when.isoformat())).delay()
    return "queued"


@app.task(name="papermail.send_confirmation", bind=True)
def send_confirmation(self: Task, subscriber_id: int) -> str | None:
    try:
        return jobs.send_confirmation(get_settings(), subscriber_id=subscriber_id)
    except DeliveryError as exc:
        _retry_or_raise(self, exc)
        return None


@app.task(name="papermail.housekeeping")
def housekeeping() -> dict:
    """Daily: forget unconfirmed addresses. A row that fails is in the result (and the log), not fatal."""
    expiry = jobs.housekeeping(get_settings())
    return {"forgotten": expiry.forgotten, "marked": expiry.marked, "failed": expiry.failed}


@app.task(name="papermail.inbound")
def inbound() -> dict:
    """Every few minutes, when INBOUND_MAILDIR is set: count bounces, carry out mailed unsubscribes."""
    return dict(jobs.read_inbound(get_settings()))


@app.task(name="papermail.reconcile")
def reconcile() -> int:
    """Every few minutes: recover abandoned claims, send retries that are due, close finished issues."""
    queued = 0
    for issue_id, batches in jobs.reconcile(get_settings()):
        for after_id, upto_id in batches:
            send_batch.delay(issue_id, after_id, upto_id)
            queued += 1
    return queued
