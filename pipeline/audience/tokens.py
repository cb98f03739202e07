"""Signed tokens for the links in every email.

Each carries the subscriber's opaque ``uid`` (random, never the address) and
is signed with a key of its own purpose, so an unsubscribe token cannot
confirm an address or change preferences. Unsubscribe and preference links
never expire (people click them in year-old mail); confirmation tokens carry
a timestamp and are checked with ``max_age``.

Keys are derived once per purpose; itsdangerous then signs with that key as
is, which keeps signing cheap enough to do for every message of a large send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from itsdangerous import Signer as _ItsSigner

_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{1,200}")


class Purpose(StrEnum):
    confirm = "papermail.confirm"
    unsubscribe = "papermail.unsubscribe"
    preferences = "papermail.preferences"
    feedback = "papermail.feedback"  # "more / less like this" on a paper of a digest
    reader_feed = "papermail.reader-feed"  # the reader's private feed: signs "<uid>.<feed generation>"


class _ClockedTimestampSigner(TimestampSigner):
    """itsdangerous's TimestampSigner, reading the time from the clock it is given instead of ``time.time``."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:  # used both to stamp a token and to measure its age against max_age
        return int(self._clock())


class Signer:
    """Makes and checks the tokens of one purpose.

    ``clock`` gives the time (seconds since the epoch) that confirmation tokens are stamped with and
    their ``max_age`` is measured against; tests pass one they can move instead of waiting.
    """

    def __init__(self, secret_key: str, purpose: Purpose, *, clock: Callable[[], float] = time.time) -> None:
        key = hmac.new(secret_key.encode(), purpose.value.encode(), hashlib.sha256).digest()
        options: dict[str, Any] = {"key_derivation": "none", "digest_method": hashlib.sha256}
        # Confirmation tokens carry the time they were signed; the others never expire, so carry none.
        self._timed = _ClockedTimestampSigner(key, clock=clock, **options) if purpose is Purpose.confirm else None
        self._signer: _ItsSigner = self._timed or _ItsSigner(key, **options)

    def sign(self, uid: str) -> str:
        return self._signer.sign(uid).decode("ascii")

    def unsign(self, token: str, *, max_age: int | None = None) -> str | None:
        """The uid in ``token``, or None if it is tampered, expired or of another purpose."""
        if self._timed is not None:
            found = self.unsign_timed(token, max_age=max_age)
            return None if found is None else found[0]
        if not _TOKEN.fullmatch(token):  # base64 decoding would quietly skip stray characters
            return None
        try:
            return self._signer.unsign(token).decode("ascii")
        except (BadSignature, UnicodeError):
            return None

    def unsign_timed(self, token: str, *, max_age: int | None = None) -> tuple[str, datetime] | None:
        """The uid in a confirmation token and when it was signed (UTC), or None as for ``unsign``."""
        if self._timed is None or not _TOKEN.fullmatch(token):
            return None
        try:
            value, signed_at = self._timed.unsign(token, max_age=max_age, return_timestamp=True)
            return value.decode("ascii"), signed_at
        except (BadSignature, UnicodeError):  # SignatureExpired is a BadSignature too
            return None
