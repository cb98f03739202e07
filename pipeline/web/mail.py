"""How the site gets a confirmation mail out without making the person wait or see a mail error."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline import jobs
from pipeline.settings import Settings

log = logging.getLogger(__name__)

SendConfirmation = Callable[[int], None]


def default_sender(settings: Settings) -> SendConfirmation:
    """A Celery task when there is a broker, else the mail step itself (run after the answer is sent)."""

    def send(subscriber_id: int) -> None:
        if settings.broker_url:
            from workers.tasks import send_confirmation  # lazily: the site must start without Celery configured

            send_confirmation.delay(subscriber_id)
        else:
            jobs.send_confirmation(settings, subscriber_id=subscriber_id)

    return send


def send_safely(send: SendConfirmation, subscriber_id: int) -> None:
    """Run ``send`` after the page went out; a failure is logged, never shown.

    The page already said "check your inbox" whatever happens, as it must for any address.
    """
    try:
        send(subscriber_id)
    except Exception:  # noqa: BLE001
        log.exception("could not send the confirmation to subscriber %s", subscriber_id)
