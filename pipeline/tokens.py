"""Signed tokens for the links in every email.

Each carries the subscriber's opaque ``uid`` (never the address) and is signed
with a salt per purpose, so an unsubscribe token cannot confirm or change
preferences. Unsubscribe and preference links do not expire: people click
them in year-old mail. Confirmation tokens do (``max_age``).
"""

from __future__ import annotations

from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer


class Purpose(StrEnum):
    confirm = "papermail.confirm"
    unsubscribe = "papermail.unsubscribe"
    preferences = "papermail.preferences"


class Signer:
    """Makes and checks the tokens of one purpose."""

    def __init__(self, secret_key: str, purpose: Purpose) -> None:
        self._purpose = purpose
        self._plain = URLSafeSerializer(secret_key, salt=purpose.value)
        self._timed = URLSafeTimedSerializer(secret_key, salt=purpose.value)

    def sign(self, uid: str) -> str:
        if self._purpose is Purpose.confirm:
            return self._timed.dumps(uid)
        return self._plain.dumps(uid)

    def unsign(self, token: str, *, max_age: int | None = None) -> str | None:
        """The uid in ``token``, or None if it is tampered, expired or of another purpose."""
        try:
            if self._purpose is Purpose.confirm:
                value = self._timed.loads(token, max_age=max_age)
            else:
                value = self._plain.loads(token)
        except BadSignature:  # SignatureExpired is a BadSignature too
            return None
        return value if isinstance(value, str) else None
