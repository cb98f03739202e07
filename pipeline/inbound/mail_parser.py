"""Parsing mail from outside, with a bound on how deeply its MIME parts nest.

The standard library's parser recurses once per level of nesting, and so does everything
that walks the parts afterwards (``Message.walk``, flufl.bounce's detectors, the readers in
:mod:`pipeline.inbound.bounce_reports`). Anyone can mail the bounce address, and a message of 5,000
nested multiparts ends in RecursionError. Real mail is a few levels deep (a bounce report
that returns a digest: report, returned message, alternative, parts), so a message nesting
deeper than ``MAX_DEPTH`` is refused while it is parsed, before any recursion runs away.
"""

from __future__ import annotations

from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import Policy

MAX_DEPTH = 50


class TooDeeplyNested(ValueError):
    """A message whose MIME parts nest more than ``MAX_DEPTH`` levels deep."""


class _BoundedParser(BytesFeedParser):
    # The feed parser keeps the parts it is inside of on _msgstack and opens every part, at any
    # level (multipart, message/rfc822, delivery-status blocks), in _new_message: the one place
    # where nesting grows, so the one place to stop it, before the next level's recursion.
    def _new_message(self) -> None:
        if len(self._msgstack) >= MAX_DEPTH:  # type: ignore[attr-defined]
            raise TooDeeplyNested(
                f"the message is too deeply nested to read (its parts go more than {MAX_DEPTH} levels deep)"
            )
        super()._new_message()  # type: ignore[misc]


def parse_message(raw: bytes, *, policy: Policy) -> Message:
    """``raw`` parsed as ``email.message_from_bytes(raw, policy=policy)`` parses it.

    Raises TooDeeplyNested for a message whose parts nest more than ``MAX_DEPTH`` levels deep;
    its text says so in words that can follow "not counted: ".
    """
    parser = _BoundedParser(policy=policy)
    parser.feed(raw)
    return parser.close()
