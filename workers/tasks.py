"""Thin tasks: each opens nothing itself, calls one ``pipeline.service`` step, maps errors to retries.

Work is named by ids and dates so a redelivered task re-reads the database.
Completion is counted in the database (``service.finish`` after every batch), not
with a chord. The task names are the contract with ``pipeline.service.runner``, which
queues them; a task hands further work on through the same runner.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task

from pipeline import service
from pipeline.errors import DayNotAvailable, DeliveryError, IngestError
from pipeline.models import Edition, utcnow
from pipeline.service import runner
from pipeline.service.runner import OnCelery
from pipeline.settings import get_settings
from workers.app import app

log = logging.getLogger(__name__)
RETRY_DELAY = 600  # seconds; below the broker's visibility timeout


def _day(value: str | None) -> dt.date:
    return dt.date.fromisoformat(value) if value else service.default_day(utcnow())


def _retry_or_raise(task: Task, exc: Exception) -> None:
    if task.request.is_eager:  # in-process: the caller reports the error
        raise exc
    raise task.retry(exc=exc, countdown=RETRY_DELAY, max_retries=6)


def _runner() -> OnCelery:
    """The workers' own runner: what a task hands on is queued through this app (its routes, its broker)."""
    return OnCelery(get_settings(), client=app)


@app.task(name=runner.DISPATCH)
def dispatch(day: str, edition: str = "daily") -> int:
    """Snapshot an issue's recipients and fan its batches out to the send queue."""
    return service.dispatch(get_settings(), day=_day(day), edition=Edition(edition), runner=_runner())


@app.task(name=runner.SEND_BATCH, bind=True)
def send_batch(self: Task, issue_id: int, after_id: int, upto_id: int) -> dict:
    try:
        # An unreachable server is waited for here, on this batch, for a couple of minutes at most.
        result = service.send_range_patiently(get_settings(), issue_id=issue_id, after_id=after_id, upto_id=upto_id)
    except DeliveryError as exc:
        _retry_or_raise(self, exc)
    service.finish(get_settings(), issue_id=issue_id)
    return {"sent": result.sent, "temporary": result.temporary, "permanent": result.permanent,
            "seconds": {stage: round(s, 4) for stage, s in result.seconds.items()}}


@app.task(name=runner.RUN_DAY, bind=True)
def run(self: Task, day: str | None = None, source: str = "hf", scheduled: bool = False) -> str:
    """The daily job (``service.run_day``): ingest, build each edition due, fan out its send batches.

    A scheduled run that starts long after its send time (workers were down) is
    skipped rather than mailing yesterday's news late; an operator can still run it.
    A list that is not out yet, or a source that is down, is tried again later.
    """
    when = _day(day)
    if scheduled and service.is_stale(get_settings(), day=when, now=utcnow()):
        log.warning("skipping the stale scheduled run for %s; run it by hand if it should still go out", when)
        return "stale"
    try:
        service.run_day(get_settings(), day=when, source=source, runner=_runner())
    except (DayNotAvailable, IngestError) as exc:
        _retry_or_raise(self, exc)
    return "done"


@app.task(name=runner.SEND_CONFIRMATION, bind=True)
def send_confirmation(self: Task, subscriber_id: int) -> str | None:
    try:
        return service.send_confirmation(get_settings(), subscriber_id=subscriber_id)
    except DeliveryError as exc:
        _retry_or_raise(self, exc)
        return None


@app.task(name="papermail.housekeeping")
def housekeeping() -> dict:
    """Daily: forget unconfirmed addresses. A row that fails is in the result (and the log), not fatal."""
    expiry = service.housekeeping(get_settings())
    return {"forgotten": expiry.forgotten, "marked": expiry.marked, "failed": expiry.failed}


@app.task(name="papermail.snapshot")
def snapshot() -> dict:
    """Every SNAPSHOT_EVERY_HOURS: the current lists fetched once more, one engagement snapshot per paper."""
    return {summary.day.isoformat(): summary.snapshots for summary in service.snapshot(get_settings())}


@app.task(name="papermail.inbound")
def inbound() -> dict:
    """Every few minutes, when INBOUND_MAILDIR is set: count bounces, carry out mailed unsubscribes."""
    return dict(service.read_inbound(get_settings()))


@app.task(name="papermail.reconcile")
def reconcile() -> int:
    """Every few minutes: recover abandoned claims, send retries that are due, close finished issues."""
    queued = 0
    for issue_id, batches in service.reconcile(get_settings()):
        _runner().send_batches(issue_id=issue_id, batches=batches)
        queued += len(batches)
    return queued
