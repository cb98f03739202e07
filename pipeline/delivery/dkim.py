"""Optional DKIM signatures (dkimpy), made after the per-subscriber bytes are in place.

The signature covers List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4
asks for it), so a receiver can trust the one-click link. Signing costs an RSA
operation per message, so it is off unless DKIM_SELECTOR and
DKIM_PRIVATE_KEY_FILE are set.
"""

from __future__ import annotations

import dkim

from pipeline.errors import ConfigError

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
                  b"list-unsubscribe-post", b"mime-version", b"content-type")


class DkimSigner:
    def __init__(self, *, domain: str, selector: str, private_key: bytes) -> None:
        self._domain, self._selector, self._key = domain.encode(), selector.encode(), private_key
        try:  # fail at start-up on an unusable key, not on the first message
            dkim.sign(b"From: a@b\r\n\r\n", self._selector, self._domain, self._key)
        except dkim.DKIMException as exc:
            raise ConfigError(f"DKIM private key cannot sign: {exc}") from exc

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header field (CRLF-terminated) for ``message``, to put in front of it."""
        return dkim.sign(message, self._selector, self._domain, self._key, include_headers=list(SIGNED_HEADERS),
                         canonicalize=(b"relaxed", b"relaxed"))

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        return self.signature(message) + message
