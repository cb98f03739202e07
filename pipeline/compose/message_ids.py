"""The Message-ID of each message sent, and reading one back from a bounce.

``<yyyymmdd[w].<uid>[.r<resend>]@<mail domain>>``: the issue's date (``w`` for
the weekly edition), the subscriber's opaque uid, and for a copy sent again by
an operator's resend the number of that resend. Every copy has its own id, so a
mail client that drops a message whose id it has seen never hides a resent copy;
and a bounce that quotes the id names exactly which subscriber and which issue
it is about, even when the address that failed is one the mail was forwarded to.
A forged bounce would need the uid, which only travels in mail to that subscriber.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import NamedTuple

from pipeline.models import Edition

_PATTERN = re.compile(r"(\d{8})(w?)\.([A-Za-z0-9_-]{8,32})(?:\.r(\d{1,9}))?@(\S+)")


class MessageRef(NamedTuple):
    """What one of our Message-IDs says."""

    day: dt.date
    edition: Edition
    uid: str
    resend_id: int | None


def make_message_id(*, day: dt.date, edition: Edition, uid: str, resend_id: int | None, domain: str) -> str:
    """The Message-ID of one subscriber's copy, without angle brackets."""
    again = f".r{resend_id}" if resend_id is not None else ""
    return f"{_issue_mark(day, edition)}.{uid}{again}@{domain}"


@lru_cache(maxsize=32)
def _issue_mark(day: dt.date, edition: Edition) -> str:
    return f"{day:%Y%m%d}" + ("w" if edition is Edition.weekly else "")


def read_message_id(value: str | None, *, domain: str) -> MessageRef | None:
    """The issue and subscriber a Message-ID of ours names; None for anyone else's id."""
    match = _PATTERN.fullmatch((value or "").strip().strip("<>"))
    if match is None or match.group(5).lower() != domain.lower():
        return None
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None
    edition = Edition.weekly if match.group(2) else Edition.daily
    resend_id = int(match.group(4)) if match.group(4) else None
    return MessageRef(day=day, edition=edition, uid=match.group(3), resend_id=resend_id)
