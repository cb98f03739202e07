"""The double opt-in mail, and the daily expiry of addresses that never confirmed."""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from sqlmodel import Session

from pipeline.audience.subscribers import UnsendableAddress, sendable_address
from pipeline.audience.subscriptions import Expiry, awaiting_confirmation, expire_pending
from pipeline.compose.links import Links
from pipeline.compose.render import render_confirmation
from pipeline.db.engine import session_scope
from pipeline.delivery.messengers import open_messenger
from pipeline.errors import DeliveryError
from pipeline.models import Subscriber, utcnow
from pipeline.service.context import dkim_signer, engine
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def confirm_url(settings: Settings, uid: str) -> str:
    links = Links(base_url=settings.base_url, secret_key=settings.secret_key)
    return links.url(links.confirm(uid))


def confirmation_message(settings: Settings, *, email: str, uid: str) -> bytes:
    rendered = render_confirmation(
        list_name=settings.list_name, confirm_url=confirm_url(settings, uid),
        list_address=settings.from_address.addr_spec, expiry_days=settings.pending_expiry_days,
    )
    msg = EmailMessage(policy=SMTP)
    msg["From"] = settings.from_address
    msg["To"] = email
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=settings.mail_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")  # RFC 2046: the preferred part last
    return msg.as_bytes()


def send_confirmation(settings: Settings, *, subscriber_id: int) -> str | None:
    """Mail the double opt-in link to a pending subscriber. Returns the server's reply, or None if not due."""
    with Session(engine(settings)) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or not awaiting_confirmation(subscriber):
            return None  # confirmed, unsubscribed or forgotten since it was queued
        uid = subscriber.uid
        try:
            email = sendable_address(subscriber.email)
        except UnsendableAddress as exc:  # stored by an earlier version; a new one is refused at the form
            log.warning("no confirmation sent to subscriber %s: %s", subscriber_id, exc)
            return None
    messenger = open_messenger(smtp_url=settings.smtp_url, outbox=settings.outbox_dir, folder="confirmations",
                               timeout=settings.smtp_timeout, dkim=dkim_signer(settings))
    try:
        result = messenger.send_message(sender=settings.from_address.addr_spec, rcpt=email,
                                        message=confirmation_message(settings, email=email, uid=uid))
    finally:
        messenger.close()
    if result.outcome == "temporary":
        raise DeliveryError(f"confirmation to {email} not accepted yet: {result.reply}")
    return result.reply


def housekeeping(settings: Settings, *, now: dt.datetime | None = None) -> Expiry:
    """Daily upkeep: forget addresses that never confirmed (a row that fails is reported, not fatal)."""
    with session_scope(engine(settings)) as session:
        return expire_pending(session, now=now or utcnow(), max_age=dt.timedelta(days=settings.pending_expiry_days))
