"""Words of untrusted text, folded and stemmed the same way wherever they are compared: a reader's
interests against a paper (pipeline.audience.interests) and a reader's model (pipeline.digest.relevance)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Words that end like an inflection but are not one: left as they are.
_KEEP = frozenset({"alias", "atlas", "bias", "canvas", "chaos", "embed", "gas", "hundred", "lens", "news", "series",
                   "species"})
_VOWELS = frozenset("aeiouy")
_UNDOUBLED = frozenset("bcdfghjkmnpqrtvwx")  # "runn" → "run"; l, s, z stay doubled ("fall", "pass", "buzz")


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A word (lower case) without its inflection: plurals (-s, -es, -ies), -ing, -ed, and a final -e,
    so that every form of a word meets at one stem ("study", "studies", "studied", "studying" → "studi";
    "image", "images", "imaging" → "imag"). Never a derivation (-al, -ion, -er, -ly).

    A cut-down Porter step 1 (Porter 1980; its Snowball revision for the y → i), and a final -ll made
    -l so that British and American spellings meet ("modelling", "modeling" → "model"; "recall" is
    "recal" in every form). Short words, words with digits and a few singular words ending in -s
    (bias, series) are left alone.
    """
    if len(word) <= 3 or word in _KEEP or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:  # studies → studi; ties → tie (below)
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):  # loss, corpus, analysis
        word = word[:-1]
    if word in _KEEP:
        return word
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and not word.endswith("eed"):  # need, speed, proceed
            rest = word[:-len(suffix)]
            if len(rest) >= 3 and not _VOWELS.isdisjoint(rest):  # string, bring: no vowel left, no suffix
                word = rest[:-1] if rest[-1] == rest[-2] and rest[-1] in _UNDOUBLED else rest
            break
    if word.endswith("y") and len(word) > 2 and word[-2] not in _VOWELS:  # study → studi, as studies
        word = word[:-1] + "i"
    elif word.endswith("e") and len(word) > 3:  # base, bases, based → bas
        word = word[:-1]
    elif word.endswith("ll") and len(word) >= 5:  # modelling, labelled (British) meet modeling, labeled
        word = word[:-1]
    return word


def fold(text: str) -> str:
    """Lower case, without accents: "Pérez" → "perez"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
