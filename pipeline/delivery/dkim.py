"""Optional DKIM signatures (RFC 6376), made after the per-subscriber bytes are in place.

The signature covers List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4
asks for it), so a receiver can trust the one-click link. The key is RSA
(rsa-sha256) or Ed25519 (ed25519-sha256, RFC 8463). Signing is off unless
DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE are set.

Canonicalization is relaxed for the header, simple for the body: the bodies
made here are CRLF, 7-bit and short-lined already, so the body is hashed as it
is, and only the few signed header fields are canonicalized.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from pipeline.errors import ConfigError

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
                  b"list-unsubscribe-post", b"mime-version", b"content-type")

MAX_LINE = 78  # RFC 5322 §2.1.1, CRLF not counted
MIN_RSA_BITS = 1024  # RFC 8301 §3.2

_WSP = re.compile(rb"[ \t]+")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def load_private_key(data: bytes) -> PrivateKey:
    """The RSA or Ed25519 key in ``data``: a PEM private key (PKCS#8, or PKCS#1 for RSA), or dkimpy's
    Ed25519 form, the base64 of the 32-byte seed. Raises ConfigError for anything else."""
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError as exc:
            raise ConfigError("DKIM private key cannot sign: it is encrypted; give it without a passphrase") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigError("DKIM private key cannot sign: the PEM data is not a usable private key") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ConfigError(f"DKIM private key cannot sign: an RSA key of {key.key_size} bits is too short "
                                  f"(at least {MIN_RSA_BITS}, 2048 advised)")
            return key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key
        raise ConfigError(f"DKIM private key cannot sign: a {type(key).__name__} is neither RSA nor Ed25519")
    try:
        seed = base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != 32:
        raise ConfigError("DKIM private key cannot sign: not a PEM RSA or Ed25519 private key, "
                          "nor the base64 of an Ed25519 seed")
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def _relaxed(value: bytes) -> bytes:
    """A header field value canonicalized as relaxed (RFC 6376 §3.4.2): unfolded, each run of WSP one
    space, none at either end."""
    return _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")


def _signed_fields(header: bytes) -> list[tuple[bytes, bytes]]:
    """The SIGNED_HEADERS present in ``header`` (the header block, CRLF line ends), in SIGNED_HEADERS
    order, each as lower-cased name and relaxed value; of a repeated field, the last instance, the one a
    verifier takes for a single name in h=."""
    raw: dict[bytes, bytes] = {}
    name = b""
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if name:
                raw[name] += line
        elif line:
            field, _, value = line.partition(b":")
            name = field.rstrip(b" \t").lower()
            raw[name] = value
    return [(name, _relaxed(raw[name])) for name in SIGNED_HEADERS if name in raw]


def _body_hash(message: bytes, start: int) -> bytes:
    """SHA-256 of the body from ``start`` canonicalized as simple (RFC 6376 §3.4.3): as it is, its
    trailing empty lines reduced to one CRLF; an empty body is one CRLF."""
    end = len(message)
    while message.endswith(b"\r\n", start, end):
        end -= 2
    digest = hashlib.sha256(memoryview(message)[start:end])
    digest.update(b"\r\n")
    return digest.digest()


def _fold(pieces: list[tuple[bytes, bytes]]) -> bytes:
    """``DKIM-Signature:`` and the ``(separator, text)`` pieces, each joined to the line before by its
    separator while the line stays within MAX_LINE, else put on a continuation line of its own; a piece
    whose separator is CRLF always starts a line. No CRLF at the end."""
    lines = [b"DKIM-Signature:"]
    for separator, text in pieces:
        if separator != b"\r\n" and len(lines[-1]) + len(separator) + len(text) <= MAX_LINE:
            lines[-1] += separator + text
        else:
            lines.append(b" " + text)
    return b"\r\n".join(lines)


class DkimSigner:
    """Signs messages as ``domain`` with the key published at ``selector._domainkey.domain``;
    ``algorithm`` is the a= value for the key's kind."""

    def __init__(self, *, domain: str, selector: str, private_key: bytes) -> None:
        self._domain, self._selector = domain.encode(), selector.encode()
        self._key = load_private_key(private_key)
        self.algorithm = b"rsa-sha256" if isinstance(self._key, rsa.RSAPrivateKey) else b"ed25519-sha256"

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header field (CRLF-terminated) for ``message`` (CRLF line ends), to put in
        front of it."""
        split = message.find(b"\r\n\r\n")
        header, body_start = (message, len(message)) if split < 0 else (message[:split + 2], split + 4)
        fields = _signed_fields(header)
        if not any(name == b"from" for name, _ in fields):
            raise ValueError("a message to sign with DKIM needs a From header field")
        h = [name + b":" for name, _ in fields]  # folded after a colon where a line is full
        h[-1] = h[-1][:-1] + b";"
        h[0] = b"h=" + h[0]
        pieces = [(b" ", b"v=1;"), (b" ", b"a=" + self.algorithm + b";"), (b" ", b"c=relaxed/simple;"),
                  (b" ", b"d=" + self._domain + b";"), (b" ", b"s=" + self._selector + b";"),
                  (b" ", b"t=%d;" % int(time.time()))]
        pieces += [(b"" if i else b" ", text) for i, text in enumerate(h)]
        pieces += [(b" ", b"bh=" + base64.b64encode(_body_hash(message, body_start)) + b";"), (b"\r\n", b"b=")]
        unsigned = _fold(pieces)
        data = b"".join(name + b":" + value + b"\r\n" for name, value in fields)
        data += b"dkim-signature:" + _relaxed(unsigned[len(b"DKIM-Signature:"):])
        if isinstance(self._key, rsa.RSAPrivateKey):
            sig = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            sig = self._key.sign(hashlib.sha256(data).digest())
        b64 = base64.b64encode(sig)
        first = MAX_LINE - len(b" b=")
        rest = [b64[i:i + MAX_LINE - 1] for i in range(first, len(b64), MAX_LINE - 1)]
        return b"\r\n ".join([unsigned + b64[:first], *rest]) + b"\r\n"

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        return self.signature(message) + message
