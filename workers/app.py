"""The one Celery app, configured from settings.

With no BROKER_URL the tasks run in-process (``task_always_eager``): the same
code path as real workers, without servers.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from pipeline.service import runner
from pipeline.settings import Settings, get_settings


def make_app(settings: Settings) -> Celery:
    # Twice a lease at least, so rows a dead sender held are sent again soon after its lease runs out.
    reconcile_every = min(300.0, settings.lease_seconds / 2)
    app = Celery("papermail", broker=settings.broker_url or "memory://", include=["workers.tasks"])
    app.conf.update(
        task_always_eager=settings.broker_url is None,
        task_eager_propagates=True,
        # A task is acknowledged after it ran, and handed back if its worker process dies,
        # so a crash never loses a batch; the delivery ledger makes the rerun harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Celery 6 turns this on by default. Off: a batch that loses the broker for a moment carries on and
        # records what it sends; cancelled, the message in hand would become "uncertain". Either way the
        # task is delivered again after the reconnect, and the ledger makes the second run send nothing twice.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        # Redis redelivers an unacknowledged task after this; every retry delay stays below it.
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_connection_retry_on_startup=True,
        task_default_queue=runner.DEFAULT_QUEUE,
        task_routes={name: {"queue": queue} for name, queue in runner.QUEUES.items()},
        beat_schedule={
            "daily-digest": {
                "task": runner.RUN_DAY,
                "schedule": crontab(minute=0, hour=settings.send_hour),
                "kwargs": {"source": "hf", "scheduled": True},
                # A run still queued hours later (no worker was up) is dropped by the broker.
                "options": {"expires": 6 * 3600},
            },
            "housekeeping": {"task": "papermail.housekeeping", "schedule": crontab(minute=30, hour=3)},
            # Retries that came due, claims whose worker died: picked up within five minutes.
            "reconcile": {"task": "papermail.reconcile", "schedule": reconcile_every,
                          "options": {"expires": reconcile_every * 0.9}},
        },
    )
    if settings.snapshot_every_hours:
        every = settings.snapshot_every_hours * 3600
        app.conf.beat_schedule["snapshot"] = {"task": "papermail.snapshot", "schedule": every,
                                              "options": {"expires": every * 0.9}}
    if settings.inbound_maildir is not None:
        every = float(settings.inbound_every_seconds)
        app.conf.beat_schedule["inbound"] = {"task": "papermail.inbound", "schedule": every,
                                             "options": {"expires": every * 0.9}}
    return app


app = make_app(get_settings())
