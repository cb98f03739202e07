"""How hard a secret is to guess: an entropy estimate for SECRET_KEY and ADMIN_TOKEN.

A value's entropy cannot be measured, only bounded: a generator drawing
uniformly from an alphabet of ``A`` symbols gives at most ``log2(A)`` bits per
character. So the estimate is the length times log2 of the smallest common
alphabet the value fits in, and values no random generator would plausibly
produce (few distinct characters for their length, a short pattern repeated)
count for nothing.
"""

from __future__ import annotations

import math
import string

MIN_SECRET_BITS = 256  # 32 random bytes, what secrets.token_urlsafe(32) and token_hex(32) give
GENERATE_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

# Smallest first. The encodings are RFC 4648's, which is what secrets.token_hex/token_urlsafe
# and base64/base32 tools print.
ALPHABETS: tuple[frozenset[str], ...] = (
    frozenset(string.digits),
    frozenset("0123456789abcdef"),  # §8, as token_hex prints it
    frozenset("0123456789ABCDEF"),
    frozenset(string.ascii_uppercase + "234567"),  # base32, §6
    frozenset(string.ascii_letters + string.digits + "-_"),  # base64url, §5: token_urlsafe
    frozenset(string.ascii_letters + string.digits + "+/"),  # base64, §4
    frozenset(chr(c) for c in range(0x20, 0x7F)),  # printable ASCII
)


def alphabet_size(value: str) -> int:
    """The size of the smallest alphabet in :data:`ALPHABETS` holding every character of ``value``."""
    chars = set(value)
    for alphabet in ALPHABETS:
        if chars <= alphabet:
            return len(alphabet)
    return len(ALPHABETS[-1])  # beyond ASCII the alphabet is unknown: no more credit than printable ASCII


def low_variety(value: str, *, alphabet: int) -> bool:
    """True when ``value`` looks typed or patterned rather than drawn at random from ``alphabet`` symbols.

    Two tests, each failed by a random draw with negligible probability at
    secret lengths: fewer than half the distinct characters such a draw is
    expected to show, or the whole value being a shorter run repeated.
    """
    n = len(value)
    if n == 0:
        return True
    expected_distinct = alphabet * (1 - (1 - 1 / alphabet) ** n)
    if len(set(value)) < expected_distinct / 2:
        return True
    return any(value[period:] == value[:-period] for period in range(1, n // 2 + 1))


def estimated_bits(value: str) -> float:
    """Bits of entropy ``value`` can hold at most: length × log2(alphabet), 0 if it is of low variety."""
    body = value.rstrip("=")  # base64/base32 padding (RFC 4648 §3.2) carries nothing
    alphabet = alphabet_size(body)
    if low_variety(body, alphabet=alphabet):
        return 0.0
    return len(body) * math.log2(alphabet)
