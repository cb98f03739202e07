"""How the site gets a confirmation mail out without making the person wait or see a mail error."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline.service.runner import Runner

log = logging.getLogger(__name__)

SendConfirmation = Callable[[int], None]


def default_sender(runner: Runner) -> SendConfirmation:
    """The runner's confirmation step: a task on the workers, or the mail step itself after the answer."""

    def send(subscriber_id: int) -> None:
        runner.send_confirmation(subscriber_id=subscriber_id)

    return send


def send_safely(send: SendConfirmation, subscriber_id: int) -> None:
    """Run ``send`` after the page went out; a failure is logged, never shown.

    The page already said "check your inbox" whatever happens, as it must for any address.
    """
    try:
        send(subscriber_id)
    except Exception:  # noqa: BLE001
        log.exception("could not send the confirmation to subscriber %s", subscriber_id)
