"""The "More like this" / "Less like this" links of every card: ``/f/{token}?paper=<arXiv id>&vote=more|less``.

GET shows the paper and one button, and changes nothing: mail scanners open every link in a
message. The button POSTs the same two fields, which records the vote (a second one replaces the
first). The token is the reader's feedback token; the paper and the vote are in the link itself,
so one token serves every card of a mail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from pipeline.audience.feedback import VOTE_NAMES, current_vote, paper_title, parse_paper_id, parse_vote, record_vote
from pipeline.audience.tokens import Purpose
from pipeline.compose import links as paths
from pipeline.models import Subscriber, SubscriberStatus, utcnow
from pipeline.web.deps import SessionDep, SettingsDep, links, subscriber_for
from pipeline.web.openapi_docs import FEEDBACK
from pipeline.web.pages import NO_STORE, message_page, page

router = APIRouter()

PaperQuery = Annotated[str | None, Query(description="the paper's arXiv id, as in 2503.16428")]
VoteQuery = Annotated[str | None, Query(description="`more` or `less` (like this)")]
PaperField = Annotated[str | None, Form(description="the paper's arXiv id, as in 2503.16428")]
VoteField = Annotated[str | None, Form(description="`more` or `less` (like this)")]


def _links(request: Request, subscriber: Subscriber) -> dict[str, Any]:
    site = links(request)
    return {"links": {"feedback": site.feedback(subscriber.uid), "preferences": site.preferences(subscriber.uid)}}


def _checked(request: Request, session: Session, paper: str | None,
             vote: str | None) -> tuple[str, int, str] | HTMLResponse:
    """(arXiv id, vote, title) from the link's fields, or the page that says what is wrong with them."""
    arxiv_id, value = parse_paper_id(paper), parse_vote(vote)
    if arxiv_id is None or value is None:
        return message_page(request, status_code=400, headers=NO_STORE, title="This feedback link is incomplete",
                            text="It does not name a paper and a vote (more or less like this) the way the links "
                                 "in the email do. Nothing was recorded.")
    title = paper_title(session, arxiv_id)
    if title is None:  # only stored papers: a link must not be able to fill the table with made-up ids
        return message_page(request, status_code=404, headers=NO_STORE, title="We do not know that paper",
                            text=f"No paper with the arXiv id {arxiv_id} is in our list. Nothing was recorded.")
    return arxiv_id, value, title


@router.get(paths.FEEDBACK, response_class=HTMLResponse, responses=FEEDBACK)
def feedback_page(request: Request, token: str, session: SessionDep, settings: SettingsDep,
                  paper: PaperQuery = None, vote: VoteQuery = None) -> HTMLResponse:
    """The paper and one button that records the vote; opening the link records nothing."""
    subscriber = subscriber_for(session, settings, purpose=Purpose.feedback, token=token)
    checked = _checked(request, session, paper, vote)
    if isinstance(checked, HTMLResponse):
        return checked
    arxiv_id, value, title = checked
    assert subscriber.id is not None
    earlier = current_vote(session, subscriber_id=subscriber.id, arxiv_id=arxiv_id)
    return page(request, "feedback.html", headers=NO_STORE, arxiv_id=arxiv_id, vote=VOTE_NAMES[value],
                paper_title=title, earlier=VOTE_NAMES.get(earlier.value) if earlier else None,
                earlier_on=f"{earlier.voted_at:%-d %b %Y}" if earlier else None, **_links(request, subscriber))


@router.post(paths.FEEDBACK, response_class=HTMLResponse, responses=FEEDBACK)
def feedback_vote(request: Request, token: str, session: SessionDep, settings: SettingsDep,
                  paper: PaperField = None, vote: VoteField = None) -> HTMLResponse:
    """Record the vote, replacing the reader's earlier one on that paper.

    Whatever the reader's status: an unsubscribed reader's vote is kept (it is theirs to clear on the
    preferences page) and changes nothing else; nobody is subscribed again by it.
    """
    subscriber = subscriber_for(session, settings, purpose=Purpose.feedback, token=token)
    checked = _checked(request, session, paper, vote)
    if isinstance(checked, HTMLResponse):
        return checked
    arxiv_id, value, title = checked
    assert subscriber.id is not None
    record_vote(session, subscriber_id=subscriber.id, arxiv_id=arxiv_id, value=value, now=utcnow())
    session.commit()
    return page(request, "feedback_saved.html", headers=NO_STORE, arxiv_id=arxiv_id, vote=VOTE_NAMES[value],
                other_vote=VOTE_NAMES[-value], paper_title=title,
                unsubscribed=subscriber.status is SubscriberStatus.unsubscribed, **_links(request, subscriber))
