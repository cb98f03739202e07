"""Mail that comes back (bounces, mailed unsubscribe requests), one message per transaction."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session

from pipeline.inbound import handler
from pipeline.inbound.handler import Handled
from pipeline.inbound.mailboxes import take_new
from pipeline.models import utcnow
from pipeline.service.context import engine
from pipeline.settings import Settings


def handle_inbound(settings: Settings, raw: bytes, *, record: bool = True) -> Handled:
    """One incoming message (a bounce, a mailed unsubscribe request, or other mail), in a transaction
    of its own: a run that stops half-way keeps what it recorded. ``record=False`` is a dry run."""
    with Session(engine(settings)) as session:
        handled = handler.handle(session, raw, secret_key=settings.secret_key, mail_domain=settings.mail_domain,
                                 bounce_limit=settings.bounce_limit, now=utcnow())
        if record:
            session.commit()
        else:
            session.rollback()
    return handled


def read_inbound(settings: Settings) -> Counter[str]:
    """Handle the new messages of INBOUND_MAILDIR and file each in ``cur/`` once recorded.
    Returns how many of each kind ("bounce", "unsubscribe", "other")."""
    kinds: Counter[str] = Counter()
    if settings.inbound_maildir is None:
        return kinds
    for raw, file_away in take_new(settings.inbound_maildir):
        kinds[handle_inbound(settings, raw).kind] += 1
        file_away()
    return kinds
