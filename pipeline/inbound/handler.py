"""Mail that comes back to the list: bounce reports, and unsubscribe requests sent by mail.

Each digest's ``List-Unsubscribe`` header offers, beside the one-click URL, a
``mailto:`` address with the subject ``unsubscribe <token>`` (RFC 2369); mail
clients that do not do one-click send that message. The signed token is what
authenticates the request, as it is for the link: a request with a tampered or
missing token changes nothing. Whatever is neither a bounce nor such a request
(replies, auto-replies, spam) is left alone.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Literal, cast

from sqlmodel import Session

from pipeline.audience.bounces import record_bounces
from pipeline.audience.subscriptions import resolve_token, unsubscribe
from pipeline.audience.tokens import Purpose
from pipeline.inbound.bounce_reports import parse_bounce
from pipeline.inbound.mail_parser import TooDeeplyNested, parse_message
from pipeline.inbound.outcomes import Line, Outcome
from pipeline.models import SubscriberStatus

# "unsubscribe <uid>.<signature>", anywhere in the subject ("Re: ", "Fwd: " and the like around it).
_REQUEST = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Handled:
    """What one incoming message was, and a line per address about what it did."""

    kind: Literal["bounce", "unsubscribe", "other"]
    lines: list[Line] = field(default_factory=list)


def unsubscribe_token(raw: bytes) -> str | None:
    """The token of an unsubscribe request: from the subject, or else the first lines of the text."""
    try:
        msg = cast(EmailMessage, parse_message(raw, policy=email.policy.default))  # what the default policy makes
        found = _REQUEST.search(str(msg.get("Subject", "")))
        if found is None:
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            found = _REQUEST.search(text[:2000])
    except Exception:  # noqa: BLE001  a malformed message is simply not a request
        return None
    return found.group(1) if found else None


def handle(session: Session, raw: bytes, *, secret_key: str, mail_domain: str, bounce_limit: int,
           now: datetime) -> Handled:
    """Record what one incoming message says. The caller commits (or rolls back, for a dry run)."""
    try:
        report = parse_bounce(raw)
    except TooDeeplyNested as exc:
        # Nothing can be read out of it, bounce or request; one line says so and the mailbox goes on.
        return Handled("other", [Line(_sender(raw), Outcome.not_counted, f"not counted: {exc}")])
    if report.is_bounce:
        return Handled("bounce", record_bounces(session, report=report, now=now, bounce_limit=bounce_limit,
                                                mail_domain=mail_domain))
    token = unsubscribe_token(raw)
    if token is None:
        return Handled("other")
    sender = _sender(raw)
    found = resolve_token(session, secret_key=secret_key, purpose=Purpose.unsubscribe, token=token)
    if found is None:  # tampered, another key's or purpose's, or naming someone no longer on the list
        return Handled("unsubscribe", [Line(sender, Outcome.unsubscribe_request,
                                            "unsubscribe request with an invalid token: nothing changed")])
    subscriber, uid = found.subscriber, found.subscriber.uid
    if subscriber.status == SubscriberStatus.unsubscribed:
        return Handled("unsubscribe", [Line(subscriber.email, Outcome.unsubscribe_request,
                                            "unsubscribe request: already unsubscribed")])
    unsubscribe(session, uid=uid, now=now)
    session.flush()
    return Handled("unsubscribe", [Line(subscriber.email, Outcome.unsubscribed, "unsubscribed by mail")])


def _sender(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
    found = re.search(r"(?im)^From:[ \t]*(.*(?:\r?\n[ \t].*)*)", head)
    address = parseaddr(found.group(1))[1] if found else ""
    return address if "@" in address and address.isprintable() else "(no sender)"
