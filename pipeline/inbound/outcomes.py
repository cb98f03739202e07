"""What one piece of returned mail did, a line per address: what ``papermail bounces`` prints and tallies."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    """What happened to one address; the value is how the line's text begins."""

    hard_bounce = "hard bounce"  # counted, below BOUNCE_LIMIT (or the address stays unsubscribed)
    marked_bounced = "marked bounced"  # counted, and the address reached BOUNCE_LIMIT
    temporary_failure = "temporary failure"  # reported, never counted
    permanent_not_counted = "permanent failure not counted"  # a policy or mailbox-full reply
    not_counted = "not counted"  # the bounce names no message of ours, or the message cannot be read
    already_recorded = "already recorded"  # this bounce was counted before
    unsubscribed = "unsubscribed by mail"
    unsubscribe_request = "unsubscribe request"  # a request that changed nothing (bad token, already unsubscribed)


@dataclass(frozen=True)
class Line:
    """One address and what happened to it, in words (``text``) and as an :class:`Outcome` (``kind``)."""

    address: str
    kind: Outcome
    text: str

    def __str__(self) -> str:
        return f"{self.address}: {self.text}"
