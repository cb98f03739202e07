"""The few lines of a paper's summary a card shows: whole sentences where they fit, and never a run of
long lowercase words that mail filters take for padding.

Abstracts are dense: "we propose efficient training through structured sparsity
patterns across transformer layers" is ordinary prose to a reader, and to
SpamAssassin two of its LONGWORDS patterns at once (2.2 points on their own,
20_body_tests.cf). A snippet is cut before such a run rather than sent with it.
"""

from __future__ import annotations

import re

# SpamAssassin's __LONGWORDS_A, _B and _C; LONGWORDS fires when more than one matches.
_LONG_RUNS = (
    re.compile(r"\b(?:[a-z]{8,}[\s.]+){6}"),
    re.compile(r"\b(?:[a-z]{6,}[\s.]+){9}"),
    re.compile(r"\b(?:[a-z]{5,}[\s.]+){10}"),
)
# A sentence ends at . ! or ? followed by space and something that can start the next one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'“])")
MIN_SNIPPET = 20  # shorter than this, a cut snippet says too little: none is shown


def reads_as_padding(text: str) -> bool:
    """Whether ``text`` trips SpamAssassin's LONGWORDS (two of its three patterns)."""
    return sum(1 for pattern in _LONG_RUNS if pattern.search(text)) > 1


def snippet(text: str, limit: int) -> str:
    """The whole sentences of ``text`` that fit in ``limit`` characters (the first one cut on a word
    boundary if it alone is longer), cut again before any run of words that reads as padding."""
    text = " ".join(text.split())
    if not text:
        return ""
    chosen = ""
    for sentence in _SENTENCE_END.split(text):
        longer = f"{chosen} {sentence}".strip()
        if len(longer) > limit:
            break
        chosen = longer
    if not chosen:
        chosen = _cut(text, limit)
    while reads_as_padding(chosen):
        start = min(m.start() for p in _LONG_RUNS if (m := p.search(chosen)))
        before = chosen[:start] + " "
        end = max(before.rfind(". "), before.rfind("! "), before.rfind("? "))  # the last sentence ending before it
        chosen = before[:end + 1] if end >= 0 else _cut(chosen, start + 1)
        if len(chosen) < MIN_SNIPPET:
            return ""
    return chosen


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters on a word boundary, ending with "…"."""
    if len(text) <= limit:
        return text
    head, sep, _ = text[: limit - 1].rpartition(" ")
    return (head if sep else text[: limit - 1]).rstrip(" ,;:") + "…"
