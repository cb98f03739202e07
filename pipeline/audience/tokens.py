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
from datetime import datetime
from enum import StrEnum

from itsdangerous import BadSignature, TimestampSigner
from itsdangerous import Signer as _ItsSigner

_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{1,200}")


class Purpose(StrEnum):
    confirm = "papermail.confirm"
    unsubscribe = "papermail.unsubscribe"
    preferences = "papermail.preferences"


class Signer:
    """Makes and checks the tokens of one purpose."""

    def __init__(self, secret_key: str, purpose: Purpose) -> None:
        key = hmac.new(secret_key.encode(), purpose.value.encode(), hashlib.sha256).digest()
        kind = TimestampSigner if purpose is Purpose.confirm else _ItsSigner
        self._signer = kind(key, key_derivation="none", digest_method=hashlib.sha256)
        self._timed = purpose is Purpose.confirm

    def sign(self, uid: str) -> str:
        return self._signer.sign(uid).decode("ascii")

    def unsign(self, token: str, *, max_age: int | None = None) -> str | None:
        """The uid in ``token``, or None if it is tampered, expired or of another purpose."""
        if not _TOKEN.fullmatch(token):  # base64 decoding would quietly skip stray characters
            return None
        try:
            if self._timed:
                value = self._signer.unsign(token, max_age=max_age)  # type: ignore[call-arg]
            else:
                value = self._signer.unsign(token)
            return value.decode("ascii")
        except (BadSignature, UnicodeError):  # SignatureExpired is a BadSignature too
            return None

    def unsign_timed(self, token: str, *, max_age: int | None = None) -> tuple[str, datetime] | None:
        """The uid in a confirmation token and when it was signed (UTC), or None as for ``unsign``."""
        if not self._timed or not _TOKEN.fullmatch(token):
            return None
        try:
            value, signed_at = self._signer.unsign(token, max_age=max_age, return_timestamp=True)  # type: ignore[call-arg,misc]
            return value.decode("ascii"), signed_at
        except (BadSignature, UnicodeError):
            return None
