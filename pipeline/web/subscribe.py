"""Double opt-in: the landing page, the subscribe form, and the confirmation link from the mail."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import IntegrityError

from pipeline.audience.subscriptions import can_confirm, confirm, request_subscription
from pipeline.compose import links as paths
from pipeline.errors import SubscriberError
from pipeline.models import SubscriberStatus, utcnow
from pipeline.web.deps import SessionDep, SettingsDep, confirmation_for, links
from pipeline.web.mail import send_safely
from pipeline.web.openapi_docs import INVALID_LINK, SUBSCRIBE
from pipeline.web.pages import NO_STORE, page

log = logging.getLogger(__name__)
router = APIRouter()

MAX_INPUT = 1000  # far above any valid address (254); longer input is not echoed back


@router.get(paths.HOME, response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    """What the list is, and the form to join it."""
    return page(request, "landing.html", error=None, value="")


def _form_again(request: Request, *, error: str, value: str) -> HTMLResponse:
    return page(request, "landing.html", status_code=400, error=error, value=value)


@router.post(paths.SUBSCRIBE, response_class=HTMLResponse, responses=SUBSCRIBE)
def subscribe(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    email: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """Ask for a confirmation mail. The answer is the same whatever the address's state (no enumeration)."""
    wait = request.app.state.limiter.retry_after(request)
    if wait is not None:
        return page(request, "rate_limited.html", status_code=429, headers={"Retry-After": str(wait)},
                    text="There were too many subscribe requests from your network. Please try again later.")
    if not email or not email.strip():
        return _form_again(request, error="Please enter your email address.", value="")
    if len(email) > MAX_INPUT:
        return _form_again(request, error="That is far too long to be an email address.", value="")
    try:
        result = request_subscription(session, email=email, now=utcnow())
        session.commit()
    except SubscriberError as exc:
        session.rollback()
        return _form_again(request, error=_sentence(str(exc)), value=email)
    except IntegrityError:
        # The same new address twice at once: the other request stored it and mails it.
        session.rollback()
        log.info("concurrent subscribe request for one address")
        return page(request, "check_inbox.html")
    if result.send_confirmation:
        # Committed above, so the mail step (or a worker) sees the row. After the answer, so that
        # the answer's timing does not tell a new address from a known one either.
        background.add_task(send_safely, request.app.state.send_confirmation, result.subscriber_id)
    return page(request, "check_inbox.html")


@router.get(paths.CONFIRM, response_class=HTMLResponse, responses=INVALID_LINK)
def confirm_page(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """A button, not an action: mail security scanners open every link in a message."""
    subscriber, issued_at = confirmation_for(session, settings, token=token)
    if subscriber.status is not SubscriberStatus.active and not can_confirm(subscriber, issued_at=issued_at):
        return _not_subscribed(request, bounced=subscriber.status is SubscriberStatus.bounced)
    return page(request, "confirm.html", headers=NO_STORE, email=subscriber.email,
                confirm_path=paths.CONFIRM.format(token=token))  # the same link: its signing time counts


@router.post(paths.CONFIRM, response_class=HTMLResponse, responses=INVALID_LINK)
def confirm_action(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """pending → active; a second click shows the same page."""
    subscriber, issued_at = confirmation_for(session, settings, token=token)
    confirm(session, uid=subscriber.uid, now=utcnow(), issued_at=issued_at)
    session.commit()
    if subscriber.status is not SubscriberStatus.active:
        return _not_subscribed(request, bounced=subscriber.status is SubscriberStatus.bounced)
    return page(request, "subscribed.html", headers=NO_STORE, email=subscriber.email,
                links=links(request).for_pages(subscriber.uid))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _not_subscribed(request: Request, *, bounced: bool) -> HTMLResponse:
    return page(request, "not_subscribed.html", headers=NO_STORE, bounced=bounced)
