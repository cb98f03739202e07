"""The links in every mail: unsubscribe (RFC 8058 one-click), resubscribe, preferences.

GET only shows a page with a button; POST acts. The one-click POST needs no
cookie and no CSRF token: the unforgeable token in the path is the proof.

The preferences page has three forms besides its own: add an interest, remove one,
clear the votes. Each posts to a path of its own under the preferences link and answers
with the whole page again (a refused interest comes back in its form, as typed).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel import Session

from pipeline.audience import interests as reader_interests
from pipeline.audience.feedback import clear_votes, votes_for
from pipeline.audience.interests import MAX_INTERESTS, MAX_VALUE_CHARS, Interest, Kind, Mode
from pipeline.audience.subscriptions import (
    Preferences,
    add_interest,
    remove_interest,
    renew_feed,
    resubscribe,
    unsubscribe,
    update_preferences,
)
from pipeline.audience.tokens import Purpose
from pipeline.compose import links as paths
from pipeline.errors import InterestError
from pipeline.models import MAX_DIGEST_SIZE, MIN_DIGEST_SIZE, Subscriber, SubscriberStatus, utcnow
from pipeline.settings import Settings
from pipeline.web.deps import SessionDep, SettingsDep, links, subscriber_for
from pipeline.web.mail import send_safely
from pipeline.web.openapi_docs import FEED_RENEW, INTERESTS_CHANGE, INVALID_LINK, PREFERENCES_SAVE
from pipeline.web.pages import NO_STORE, page

router = APIRouter()

# The preferences page's other forms, under its own link (same token).
KIND_NAMES = {Kind.category: "arXiv category", Kind.keyword: "Keyword or phrase", Kind.author: "Author",
              Kind.organization: "Organization"}
NEW_INTEREST = {"kind": Kind.keyword.value, "value": "", "mode": Mode.include.value}

FIELD_MESSAGES = {
    "digest_size": f"The number of papers must be between {MIN_DIGEST_SIZE} and {MAX_DIGEST_SIZE}.",
    "weekday": "The day the weekly mail arrives must be one of Monday to Sunday.",
    "frequency": "How often must be daily or weekly.",
    "paused": "Pause must be on or off.",
    "mix": "Choose how your papers are ordered: mostly trending, balanced or mostly for you.",
    "send_anyway": "“Send the trending papers anyway” must be on or off.",
}
MIXES = (("20", "Mostly trending"), ("50", "Balanced"), ("80", "Mostly for me"))

FormField = Annotated[str | None, Form()]


def _links(request: Request, subscriber: Subscriber) -> dict[str, Any]:
    return {"links": links(request).for_pages(subscriber.uid)}


def _preference_links(request: Request, subscriber: Subscriber) -> dict[str, Any]:
    token = links(request).token(Purpose.preferences, subscriber.uid)
    return {"links": {**links(request).for_pages(subscriber.uid),
                      # the fragment brings the reader back to the section they used
                      "interests": paths.INTERESTS.format(token=token) + "#interests",
                      "interest_remove": paths.INTEREST_REMOVE.format(token=token) + "#interests",
                      "votes_clear": paths.VOTES_CLEAR.format(token=token) + "#votes",
                      "feed_renew": paths.FEED_RENEW.format(token=token) + "#feed",
                      "feed": links(request).url(links(request).reader_feed(subscriber.uid,
                                                                             subscriber.feed_generation))}}


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
            "digest_size": str(prefs.digest_size), "mix": str(prefs.mix), "send_anyway": prefs.send_anyway}


def _preferences_page(request: Request, settings: Settings, session: Session, subscriber: Subscriber, *,
                      form: dict[str, object] | None = None, status: int = 200, errors: list[str] | None = None,
                      saved: bool = False, interest_form: dict[str, str] | None = None,
                      interest_errors: list[str] | None = None, interest_notice: str | None = None,
                      votes_notice: str | None = None, feed_notice: str | None = None) -> HTMLResponse:
    """The page: the preferences form (``form``: its values), the interests, the votes."""
    assert subscriber.id is not None  # a stored row, found by its token
    if form is None:
        form = _form_values(Preferences.of(subscriber, default_size=settings.digest_size))
    votes, votes_total = votes_for(session, subscriber_id=subscriber.id)
    interests = [{"kind": i.kind.value, "kind_name": KIND_NAMES[i.kind], "value": i.value, "mode": i.mode.value}
                 for i in reader_interests.load(subscriber.topics)]
    return page(request, "preferences.html", status_code=status, headers=NO_STORE, email=subscriber.email,
                subscriber_status=subscriber.status.value, form=form, errors=errors or [], saved=saved,
                min_size=MIN_DIGEST_SIZE, max_size=MAX_DIGEST_SIZE, mixes=MIXES, interests=interests,
                interest_form=interest_form or NEW_INTEREST, interest_errors=interest_errors or [],
                interest_notice=interest_notice, kind_names={k.value: name for k, name in KIND_NAMES.items()},
                max_interests=MAX_INTERESTS, max_value_chars=MAX_VALUE_CHARS, votes_total=votes_total,
                votes=[{"arxiv_id": v.arxiv_id, "title": v.title, "vote": v.name, "on": f"{v.voted_at:%-d %b %Y}"}
                       for v in votes],
                votes_notice=votes_notice, feed_notice=feed_notice, **_preference_links(request, subscriber))


@router.get(paths.PREFERENCES, response_class=HTMLResponse, responses=INVALID_LINK)
def preferences_page(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The form, filled in with what the subscriber has now."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    return _preferences_page(request, settings, session, subscriber)


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
    mix: FormField = None,
    send_anyway: FormField = None,
) -> HTMLResponse:
    """Validate through ``Preferences``; a field left out keeps its value, an unchecked box means off."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    current = Preferences.of(subscriber, default_size=settings.digest_size)
    submitted = {"frequency": frequency, "weekday": weekday, "digest_size": digest_size, "mix": mix}
    raw: dict[str, object] = {**current.model_dump(), **{k: v.strip() for k, v in submitted.items() if v is not None}}
    for box, value in (("paused", paused), ("send_anyway", send_anyway)):
        raw[box] = value is not None and value.strip() != "" and value  # browsers omit an unchecked box
    try:
        prefs = Preferences.model_validate(raw)
    except ValidationError as exc:
        fields = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        errors = [message for name, message in FIELD_MESSAGES.items() if name in fields]
        errors = errors or ["Those preferences could not be saved: please check each field."]
        form = {**{k: str(v) for k, v in raw.items()}, "paused": bool(raw["paused"]),
                "send_anyway": bool(raw["send_anyway"])}  # shown back as typed
        return _preferences_page(request, settings, session, subscriber, form=form, status=400, errors=errors)
    update_preferences(session, uid=subscriber.uid, prefs=prefs, now=utcnow())
    session.commit()
    return _preferences_page(request, settings, session, subscriber, form=_form_values(prefs), saved=True)


@router.post(paths.INTERESTS, response_class=HTMLResponse, responses=INTERESTS_CHANGE)
def interest_add(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    kind: FormField = None,
    value: FormField = None,
    mode: FormField = None,
) -> HTMLResponse:
    """Add one interest (``kind``: category, keyword, author or organization; ``mode``: include, the
    default, or exclude). One the reader has already, in the other mode, switches to this one."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    typed = {"kind": (kind or "").strip(), "value": value or "", "mode": (mode or Mode.include.value).strip()}
    try:
        interest = Interest.parse(kind, value, mode if mode is not None else Mode.include)
        change = add_interest(session, uid=subscriber.uid, interest=interest, now=utcnow())
    except InterestError as exc:
        session.rollback()
        return _preferences_page(request, settings, session, subscriber, status=400, interest_form=typed,
                                 interest_errors=[str(exc)])
    session.commit()
    label = f"“{interest.label}”"
    notice = {"added": f"Added {label}.", "already": f"{label} is already one of your interests.",
              "switched": f"Now {'excluding' if interest.mode is Mode.exclude else 'including'} the papers that "
                          f"match {label}."}[change or "already"]
    return _preferences_page(request, settings, session, subscriber, interest_notice=notice)


@router.post(paths.INTEREST_REMOVE, response_class=HTMLResponse, responses=INTERESTS_CHANGE)
def interest_remove(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    kind: FormField = None,
    value: FormField = None,
) -> HTMLResponse:
    """Remove one interest, named by its ``kind`` and ``value`` (in whichever mode it is kept)."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    try:
        interest = Interest.parse(kind, value)
    except InterestError:
        return _preferences_page(request, settings, session, subscriber, status=400,
                                 interest_errors=["That is not one of your interests, so nothing was removed."])
    removed = remove_interest(session, uid=subscriber.uid, interest=interest, now=utcnow())
    session.commit()
    label = f"“{interest.label}”"
    notice = f"Removed {label}." if removed else f"{label} was not one of your interests."
    return _preferences_page(request, settings, session, subscriber, interest_notice=notice)


@router.post(paths.VOTES_CLEAR, response_class=HTMLResponse, responses=INVALID_LINK)
def votes_clear(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Delete every "more / less like this" vote of the reader."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    assert subscriber.id is not None
    cleared = clear_votes(session, subscriber_id=subscriber.id)
    session.commit()
    notice = f"Cleared {cleared} vote{'' if cleared == 1 else 's'}." if cleared else "There were no votes to clear."
    return _preferences_page(request, settings, session, subscriber, votes_notice=notice)


@router.post(paths.FEED_RENEW, response_class=HTMLResponse, responses=FEED_RENEW)
def feed_renew(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """A new address for the reader's private feed; the old one answers 404 from now on."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.preferences, token=token)
    renew_feed(session, uid=subscriber.uid, now=utcnow())
    session.commit()
    session.refresh(subscriber)
    return _preferences_page(request, settings, session, subscriber,
                             feed_notice="Your feed has a new address; the old one no longer works.")
