"""The links in every mail: unsubscribe (RFC 8058 one-click), resubscribe, preferences.

GET only shows a page with a button; POST acts. The one-click POST needs no
cookie and no CSRF token: the unforgeable token in the path is the proof.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from pipeline.audience.subscriptions import Preferences, resubscribe, unsubscribe, update_preferences
from pipeline.audience.tokens import Purpose
from pipeline.compose import links as paths
from pipeline.models import MAX_DIGEST_SIZE, MIN_DIGEST_SIZE, Subscriber, SubscriberStatus, utcnow
from pipeline.settings import Settings
from pipeline.web.deps import SessionDep, SettingsDep, links, subscriber_for
from pipeline.web.mail import send_safely
from pipeline.web.openapi_docs import INVALID_LINK, PREFERENCES_SAVE
from pipeline.web.pages import NO_STORE, page

router = APIRouter()

FIELD_MESSAGES = {
    "digest_size": f"The number of papers must be between {MIN_DIGEST_SIZE} and {MAX_DIGEST_SIZE}.",
    "weekday": "The day the weekly mail arrives must be one of Monday to Sunday.",
    "frequency": "How often must be daily or weekly.",
    "paused": "Pause must be on or off.",
}

FormField = Annotated[str | None, Form()]


def _links(request: Request, subscriber: Subscriber) -> dict[str, Any]:
    return {"links": links(request).for_pages(subscriber.uid)}


@router.get(paths.UNSUBSCRIBE, response_class=HTMLResponse, responses=INVALID_LINK)
def unsubscribe_page(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """One button; unsubscribing on GET would let every mail scanner unsubscribe everyone."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.unsubscribe, token=token)
    if subscriber.status is SubscriberStatus.unsubscribed:
        return page(request, "unsubscribed.html", headers=NO_STORE, email=subscriber.email, just_now=False,
                    **_links(request, subscriber))
    return page(request, "unsubscribe.html", headers=NO_STORE, email=subscriber.email,
                **_links(request, subscriber))


@router.post(paths.UNSUBSCRIBE, response_class=HTMLResponse, responses=INVALID_LINK)
def unsubscribe_action(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """RFC 8058 one-click: act at once and answer 200 with a page, never a redirect.

    The body (``List-Unsubscribe=One-Click``, urlencoded or multipart) is not
    read: the page's own button and any mail client's POST are honoured alike.
    """
    subscriber = subscriber_for(session, settings, purpose=Purpose.unsubscribe, token=token)
    unsubscribe(session, uid=subscriber.uid, now=utcnow())
    session.commit()
    return page(request, "unsubscribed.html", headers=NO_STORE, email=subscriber.email, just_now=True,
                **_links(request, subscriber))


@router.post(paths.RESUBSCRIBE, response_class=HTMLResponse, responses=INVALID_LINK)
def resubscribe_action(request: Request, token: str, session: SessionDep, settings: SettingsDep,
                       background: BackgroundTasks) -> HTMLResponse:
    """A confirmation mail to the address, never a subscription by itself.

    The link may be in a years-old, forwarded mail, and the button can be pressed from any
    site: only a click in the inbox it names brings the address back. A bounced address
    stays bounced: only the list owner clears that.
    """
    subscriber = subscriber_for(session, settings, purpose=Purpose.unsubscribe, token=token)
    request_made = resubscribe(session, uid=subscriber.uid, now=utcnow())
    session.commit()
    if request_made is not None and request_made.send_confirmation:
        background.add_task(send_safely, request.app.state.send_confirmation, request_made.subscriber_id)
    return page(request, "welcome_back.html", headers=NO_STORE, email=subscriber.email,
                subscriber_status=subscriber.status.value, **_links(request, subscriber))


def _form_values(prefs: Preferences) -> dict[str, object]:
    return {"paused": prefs.paused, "frequency": prefs.frequency.value, "weekday": str(prefs.weekday),
            "digest_size": str(prefs.digest_size)}


def _preferences_page(request: Request, settings: Settings, subscriber: Subscriber, *, form: dict[str, object],
                      status: int = 200, errors: list[str] | None = None, saved: bool = False) -> HTMLResponse:
    return page(request, "preferences.html", status_code=status, headers=NO_STORE, email=subscriber.email,
                subscriber_status=subscriber.status.value, form=form, errors=errors or [], saved=saved,
                min_size=MIN_DIGEST_SIZE, max_size=MAX_DIGEST_SIZE, **_links(request, subscriber))


@router.get(paths.PREFERENCES, response_class=HTMLResponse, responses=INVALID_LINK)
def preferences_page(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The form, filled in with what the subscriber has now."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    prefs = Preferences.of(subscriber, default_size=settings.digest_size)
    return _preferences_page(request, settings, subscriber, form=_form_values(prefs))


@router.post(paths.PREFERENCES, response_class=HTMLResponse, responses=PREFERENCES_SAVE)
def preferences_save(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    paused: FormField = None,
    frequency: FormField = None,
    weekday: FormField = None,
    digest_size: FormField = None,
) -> HTMLResponse:
    """Validate through ``Preferences``; a field left out keeps its value, an unchecked box means not paused."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    current = Preferences.of(subscriber, default_size=settings.digest_size)
    submitted = {"frequency": frequency, "weekday": weekday, "digest_size": digest_size}
    raw: dict[str, object] = {**current.model_dump(), **{k: v.strip() for k, v in submitted.items() if v is not None}}
    raw["paused"] = paused is not None and paused.strip() != "" and paused  # browsers omit an unchecked box
    try:
        prefs = Preferences.model_validate(raw)
    except ValidationError as exc:
        fields = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        errors = [message for name, message in FIELD_MESSAGES.items() if name in fields]
        errors = errors or ["Those preferences could not be saved: please check each field."]
        form = {**{k: str(v) for k, v in raw.items()}, "paused": bool(raw["paused"])}  # shown back as typed
        return _preferences_page(request, settings, subscriber, form=form, status=400, errors=errors)
    update_preferences(session, uid=subscriber.uid, prefs=prefs, now=utcnow())
    session.commit()
    return _preferences_page(request, settings, subscriber, form=_form_values(prefs), saved=True)
