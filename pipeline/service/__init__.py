"""What the CLI, the site and the Celery tasks call: each step takes ``Settings``, opens what it needs
(database, HTTP client, messenger) and calls the pipeline with plain arguments.

Steps take ids and dates, never live objects, so a task that is redelivered simply runs its step again.

    context        settings → engine, days, rank weights, send context
    daily          ingest → build → start sending → send a range → finish
    confirmations  the double opt-in mail; expiry of unconfirmed addresses
    inbound        bounces and mailed unsubscribe requests
    operators      pause, resume, resend, progress, the reconciler
    runner         in this process or queued on Celery, chosen once from BROKER_URL
"""

from pipeline.service.confirmations import confirm_url, confirmation_message, housekeeping, send_confirmation
from pipeline.service.context import (
    SAMPLE,
    default_day,
    digest_context,
    dkim_signer,
    editions_due,
    engine,
    rank_request,
    sample_day,
    send_context,
    weights,
)
from pipeline.service.daily import (
    DayReport,
    IngestSummary,
    build,
    dispatch,
    finish,
    ingest,
    ingest_history,
    is_stale,
    issue_for,
    run_day,
    send_range,
    send_range_patiently,
    snapshot,
    start_sending,
    stored_images,
)
from pipeline.service.inbound import handle_inbound, read_inbound
from pipeline.service.operators import Progress, pause, progress, reconcile, resend, resume
from pipeline.service.runner import InProcess, OnCelery, Runner, runner_for

__all__ = [
    "send_range_patiently",
    "DayReport", "InProcess", "OnCelery", "Runner", "dispatch", "run_day", "runner_for",
    "IngestSummary", "SAMPLE", "build", "confirm_url", "confirmation_message", "default_day", "digest_context",
    "dkim_signer", "editions_due", "engine", "finish", "handle_inbound", "housekeeping", "ingest", "ingest_history", "is_stale",
    "issue_for", "pause", "Progress", "progress", "rank_request", "read_inbound", "reconcile", "resend", "resume",
    "sample_day", "send_confirmation", "send_context", "send_range", "snapshot", "start_sending", "stored_images", "weights",
]
