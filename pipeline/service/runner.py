"""The one seam between "do it now, in this process" and "queue it for the Celery workers".

Chosen once, at the edge, from BROKER_URL (:func:`runner_for`): the CLI, the site
and the workers' own tasks all hand work to a ``Runner`` and never ask themselves
which kind it is. The daily chain (ingest → build → send → close) is written once,
in :func:`pipeline.service.daily.run_day`; a runner only decides where its steps run.

The Celery runner names tasks by their names (``papermail.*``, implemented in
``workers/tasks.py``) and sends them with a client of its own, so nothing under
``pipeline/`` imports ``workers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from pipeline.models import Edition
from pipeline.settings import Settings

# The task names and queues: the contract between the runner and workers/tasks.py.
RUN_DAY = "papermail.run"
DISPATCH = "papermail.dispatch"
SEND_BATCH = "papermail.send_batch"
SEND_CONFIRMATION = "papermail.send_confirmation"
DEFAULT_QUEUE = "papermail"
SEND_QUEUE = "papermail.send"  # send batches have a queue of their own, so a backlog never delays a build
QUEUES = {SEND_BATCH: SEND_QUEUE}

Batches = Iterable[tuple[int, int]]


class Runner(Protocol):
    """Where the steps of the daily job run."""

    queues: bool  # True: the work is queued for workers, and the caller can only follow it in the ledger

    def run_day(self, *, day: dt.date, source: str) -> None:
        """The whole daily job for ``day``: ingest, then build and send each edition due."""

    def send_issue(self, *, day: dt.date, edition: Edition) -> None:
        """Send an issue's open deliveries (all of them in process; fanned out as batches on workers)."""

    def send_batches(self, *, issue_id: int, batches: Batches) -> None:
        """Send these delivery-id ranges of an issue, then close it if nothing is left."""

    def send_confirmation(self, *, subscriber_id: int) -> None:
        """Mail the double opt-in link to a subscriber awaiting confirmation."""


class InProcess:
    """Runs every step here and now: the embedded default, with no broker."""

    queues = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run_day(self, *, day: dt.date, source: str) -> None:
        from pipeline.service.daily import run_day

        run_day(self.settings, day=day, source=source, runner=self)

    def send_issue(self, *, day: dt.date, edition: Edition) -> None:
        from pipeline.service.daily import dispatch

        dispatch(self.settings, day=day, edition=edition, runner=self)

    def send_batches(self, *, issue_id: int, batches: Batches) -> None:
        from pipeline.service.daily import finish, send_range

        for after_id, upto_id in batches:
            send_range(self.settings, issue_id=issue_id, after_id=after_id, upto_id=upto_id)
        finish(self.settings, issue_id=issue_id)

    def send_confirmation(self, *, subscriber_id: int) -> None:
        from pipeline.service.confirmations import send_confirmation

        send_confirmation(self.settings, subscriber_id=subscriber_id)


class Client(Protocol):
    """What the Celery runner needs of a Celery app: ``Celery.send_task``."""

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


class OnCelery:
    """Queues every step as a task for ``celery -A workers worker``; completion is counted in the ledger."""

    queues = True

    def __init__(self, settings: Settings, *, client: Client | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Client:
        if self._client is None:  # a producer needs only the broker; made on first use, so the site starts without it
            from celery import Celery

            self._client = Celery("papermail-client", broker=self.settings.broker_url)
        return self._client

    def _send(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.client.send_task(name, args=args, kwargs=kwargs, queue=QUEUES.get(name, DEFAULT_QUEUE))

    def run_day(self, *, day: dt.date, source: str) -> None:
        self._send(RUN_DAY, day.isoformat(), source)

    def send_issue(self, *, day: dt.date, edition: Edition) -> None:
        self._send(DISPATCH, day.isoformat(), edition.value)

    def send_batches(self, *, issue_id: int, batches: Batches) -> None:
        # Each batch task closes the issue when it finds nothing left open: no chord to wait on.
        for after_id, upto_id in batches:
            self._send(SEND_BATCH, issue_id, after_id, upto_id)

    def send_confirmation(self, *, subscriber_id: int) -> None:
        self._send(SEND_CONFIRMATION, subscriber_id)


def runner_for(settings: Settings) -> Runner:
    """The runner BROKER_URL asks for: queued on Celery when it is set, in this process otherwise."""
    return OnCelery(settings) if settings.broker_url else InProcess(settings)
