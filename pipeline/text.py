"""Cleaning untrusted text (titles, abstracts, names) into one safe line. Used on the way in and out."""

from __future__ import annotations

import unicodedata
from typing import Any

# Bidi embeddings/overrides/isolates reorder displayed text (the "Trojan Source" trick).
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def clean_text(value: Any) -> str:
    """One line of text: every run of whitespace (CR, LF, tabs, U+2028 ...) becomes one space;
    control, lone-surrogate and bidi-override characters are dropped. So "a\\r\\nBcc:" reads
    "a Bcc:", never a second header line."""
    if value is None:
        return ""
    text = str(value)
    kept = "".join(
        ch for ch in text if ch.isspace() or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _BIDI)
    )
    return unicodedata.normalize("NFC", " ".join(kept.split()))
