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


# What a terminal acts on besides printing: the bidi controls above plus the marks that also reorder
# a line (LRM, RLM, ALM), and the line and paragraph separators some terminals break lines at.
_TERMINAL_BIDI = _BIDI | {"\u200e", "\u200f", "\u061c"}
_TERMINAL_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")


def terminal_text(value: Any) -> str:
    """``value`` as it can be printed on a terminal: no character that the terminal would act on.

    C0 and C1 control characters go (ESC, so no ``ESC ]0;...`` retitles and no ``ESC [2J``
    clears the screen; the 8-bit CSI U+009B; BEL; DEL), and so do bidi controls. Line breaks,
    tabs and CR become one space each, so text from outside cannot start a forged line of
    output or overwrite one; runs of spaces are kept (columns stay aligned). Lone surrogates
    (undecodable bytes of a message) become U+FFFD rather than failing to print.
    """
    if value is None:
        return ""
    kept = []
    for ch in str(value):
        if ch in _TERMINAL_BREAKS:
            kept.append(" ")
        elif ch in _TERMINAL_BIDI:
            continue
        else:
            category = unicodedata.category(ch)
            if category == "Cs":
                kept.append("\ufffd")
            elif category != "Cc":
                kept.append(ch)
    return "".join(kept)
