"""A reader's interests, and whether a paper matches them. Pure: no database, no settings, no clock.

An interest is one of four kinds, each to include or to exclude:

    category      an arXiv category (``cs.LG``, ``hep-th``, ``q-bio.NC``) or a whole archive (``cs``: every
                  cs.*), against the paper's categories, cross-lists included; case does not matter
    keyword       a word or a phrase of up to 8 words, against the title, the summary, the abstract and the
                  keywords; whole words only, case and accents ignored, and a small stemmer on both sides
                  (see :func:`stem`) so that "accelerator" finds "accelerators" and "train" finds "training".
                  A phrase matches its words one after the other inside one field; "pre-training" also
                  finds "pretraining" and "pre training"
    author        a name, against each listed author, case and accents ignored: the whole name; a surname
                  or the end of a name ("LeCun", "van der Maaten"); first and last name with middle names
                  left out ("Geoffrey Hinton" finds "Geoffrey E. Hinton" and "G. Hinton"); an initial and
                  a surname ("G. Hinton" finds every G... Hinton)
    organization  a name, against the organization the paper is listed under: its words, in order,
                  anywhere in it ("Google" finds "Google DeepMind", never "Googleplex")

A paper is in when the reader includes nothing (everything) or when one of their includes matches, and
out whenever one of their excludes matches: excludes win. Only inflections are stemmed (plurals,
-ing, -ed): "diffusion" does not find "diffusional", nor "learn" "learner", because a derived word
often means something else ("organ" must not find "organization").

Speed: a send matches every reader against every paper of the issue. :func:`prepare` turns a paper
into a set of keys once per issue, :func:`compile_interests` turns a reader's interests into keys once
per reader, and :func:`match` is then a few set look-ups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, TypeVar

from pipeline.errors import InterestError
from pipeline.text import clean_text
from pipeline.words import fold, stem

MAX_INTERESTS = 50  # per reader
MAX_VALUE_CHARS = 100
MAX_PHRASE_WORDS = 8  # also the longest run of words a paper's text is indexed by
MAX_NAME_WORDS = 8  # an author's or an organization's name, as typed
MAX_FIELD_CHARS = 20_000  # of one text field of a paper: an abstract is about 2,000
MAX_LIST_ITEMS = 1_000  # authors (collaborations list thousands) or keywords of one paper
MAX_ORGANIZATION_WORDS = 30


class Kind(StrEnum):
    category = "category"
    keyword = "keyword"
    author = "author"
    organization = "organization"


class Mode(StrEnum):
    include = "include"
    exclude = "exclude"


# The arXiv category taxonomy (https://arxiv.org/category_taxonomy), archive → subject classes; archives
# with none are categories themselves. Alternative names (cs.NA = math.NA, math.MP = math-ph ...) are listed.
_TAXONOMY: dict[str, str] = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS PF PL RO "
          "SC SD SE SI SY",
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn gen-ph "
               "geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "stat": "AP CO ME ML OT TH",
    "gr-qc": "", "hep-ex": "", "hep-lat": "", "hep-ph": "", "hep-th": "", "math-ph": "", "nucl-ex": "",
    "nucl-th": "", "quant-ph": "",
}
CATEGORIES: dict[str, str] = {  # lower case → as arXiv writes it; a whole archive counts as one
    **{archive: archive for archive in _TAXONOMY},
    **{f"{archive}.{subject}".lower(): f"{archive}.{subject}"
       for archive, subjects in _TAXONOMY.items() for subject in subjects.split()},
}

Key = tuple[str, ...]  # ("w", stem, ...) words, ("c", category), ("a"/"af"/"ai", ...) authors, ("o", ...) organizations


# --- interests ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interest:
    """One interest, valid and in its stored form: build it with :meth:`parse` (or :meth:`from_json`)."""

    kind: Kind
    value: str
    mode: Mode = Mode.include

    @classmethod
    def parse(cls, kind: object, value: object, mode: object = Mode.include) -> Interest:
        """An interest from what a reader typed, cleaned; InterestError with a message for them if it cannot be."""
        kind_ = _choice(Kind, kind, "Choose what kind of interest this is: an arXiv category, a keyword or phrase, "
                                    "an author or an organization.")
        mode_ = _choice(Mode, mode, "Choose whether to include or to exclude the papers that match.")
        text = clean_text(value) if isinstance(value, str) else ""
        if not text:
            raise InterestError(f"Type the {_NOUNS[kind_]} to {mode_.value}.")
        if len(text) > MAX_VALUE_CHARS:
            raise InterestError(f"An interest can be at most {MAX_VALUE_CHARS} characters long.")
        if kind_ is Kind.category:
            canonical = CATEGORIES.get(text.lower())
            if canonical is None:
                raise InterestError(f"“{text}” is not an arXiv category like cs.LG, hep-th or q-bio.NC "
                                    "(the list: arxiv.org/category_taxonomy).")
            return cls(kind_, canonical, mode_)
        if kind_ is Kind.keyword:
            words = _sequences(text)[0]
            if not words:
                raise InterestError(f"“{text}” has no words to look for.")
            if len(words) > MAX_PHRASE_WORDS:
                raise InterestError(f"A phrase can have at most {MAX_PHRASE_WORDS} words.")
        else:
            words = _name_words(text)
            if not any(any(ch.isalpha() for ch in word) for word in words):
                raise InterestError(f"“{text}” is not a name.")
            if len(words) > MAX_NAME_WORDS:
                raise InterestError(f"A name can have at most {MAX_NAME_WORDS} words.")
        return cls(kind_, text, mode_)

    @classmethod
    def from_json(cls, obj: object) -> Interest | None:
        """An interest from its stored form, or None if it is not one (stored by hand, or by a later version)."""
        if not isinstance(obj, Mapping):
            return None
        try:
            return cls.parse(obj.get("kind"), obj.get("value"), obj.get("mode", Mode.include))
        except InterestError:
            return None

    def to_json(self) -> dict[str, str]:
        """The stored form: one of the objects in ``Subscriber.topics``."""
        return {"kind": self.kind.value, "value": self.value, "mode": self.mode.value}

    @property
    def identity(self) -> Key:
        """What makes two interests the same one, whatever their mode: "Diffusion Models" is "diffusion model"."""
        return _identity(self.kind, self.value)

    @property
    def label(self) -> str:
        """How a page or a "why" line names it."""
        return self.value


_E = TypeVar("_E", Kind, Mode)
_NOUNS = {Kind.category: "arXiv category", Kind.keyword: "keyword or phrase", Kind.author: "author's name",
          Kind.organization: "organization's name"}


def _choice(enum: type[_E], raw: object, message: str) -> _E:
    if isinstance(raw, enum):
        return raw
    try:
        return enum(raw.strip().lower() if isinstance(raw, str) else "")
    except ValueError:
        raise InterestError(message) from None


@lru_cache(maxsize=4096)
def _identity(kind: Kind, value: str) -> Key:
    if kind is Kind.category:
        return (kind.value, value.lower())
    if kind is Kind.keyword:
        return (kind.value, *_sequences(value)[0])
    return (kind.value, *_name_words(value))


def load(topics: object) -> list[Interest]:
    """A reader's interests from ``Subscriber.topics``: what is not an interest is left out, as are
    repeats and any past :data:`MAX_INTERESTS`. An empty list means everything."""
    if not isinstance(topics, list):
        return []
    found: dict[Key, Interest] = {}
    for obj in topics:
        interest = Interest.from_json(obj)
        if interest is not None and interest.identity not in found and len(found) < MAX_INTERESTS:
            found[interest.identity] = interest
    return list(found.values())


def dump(interests: Iterable[Interest]) -> list[dict[str, str]]:
    """The value to store in ``Subscriber.topics``."""
    return [interest.to_json() for interest in interests]


Change = Literal["added", "already", "switched"]


def add(interests: Sequence[Interest], new: Interest) -> tuple[list[Interest], Change]:
    """``interests`` with ``new`` added, and what that did: ``already`` (it was there, in this mode), or
    ``switched`` (it was there in the other mode, which it replaces in place). InterestError when the
    list is full."""
    for position, old in enumerate(interests):
        if old.identity == new.identity:
            if old.mode is new.mode:  # kept as first written
                return list(interests), "already"
            return [*interests[:position], new, *interests[position + 1:]], "switched"
    if len(interests) >= MAX_INTERESTS:
        raise InterestError(f"You can have at most {MAX_INTERESTS} interests: remove one before adding another.")
    return [*interests, new], "added"


def remove(interests: Sequence[Interest], gone: Interest) -> list[Interest]:
    """``interests`` without ``gone`` (whatever its mode); the same list if it is not there."""
    return [interest for interest in interests if interest.identity != gone.identity]


# --- words --------------------------------------------------------------------------------------------

_RUN = re.compile(r"[^\W_]+(?:[-\u2010\u2011][^\W_]+)*")  # words, hyphenated ones as one run
_HYPHEN = re.compile(r"[-\u2010\u2011]")
_WORD = re.compile(r"[^\W_]+")


def _sequences(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stemmed words of ``text``, a hyphenated word as its parts ("pre", "train") and as one ("pretrain")."""
    split: list[str] = []
    joined: list[str] = []
    for run in _RUN.findall(fold(text)):
        parts = _HYPHEN.split(run)
        if len(parts) == 1:
            split.append(stem(run))
            joined.append(split[-1])
        else:
            split.extend(stem(part) for part in parts)
            joined.append(stem("".join(parts)))
    return tuple(split), tuple(joined)


def _name_words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(fold(text)))


# --- papers -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaperKeys:
    """Everything about one paper that an interest can match, as keys: :func:`prepare` makes it."""

    keys: frozenset[Key]


def _text(value: object) -> str:
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        return []
    return [item[:MAX_FIELD_CHARS] for item in value[:MAX_LIST_ITEMS] if isinstance(item, str)]


def _add_runs(keys: set[Key], tag: str, words: tuple[str, ...], longest: int) -> None:
    for n in range(1, min(longest, len(words)) + 1):
        for start in range(len(words) - n + 1):
            keys.add((tag, *words[start:start + n]))


def prepare(paper: Mapping[str, Any]) -> PaperKeys:
    """A paper (a frozen issue item, or any mapping with its fields) as keys, once per issue.

    Reads ``title``, ``summary``, ``abstract``, ``keywords``, ``categories``, ``authors`` and
    ``organization``; any of them may be missing, None, or not of the expected type.
    """
    keys: set[Key] = set()
    texts = [_text(paper.get(name)) for name in ("title", "summary", "abstract")]
    for text in dict.fromkeys([*texts, *_strings(paper.get("keywords"))]):  # a summary may be the abstract
        split, joined = _sequences(text)
        _add_runs(keys, "w", split, MAX_PHRASE_WORDS)
        if joined != split:
            _add_runs(keys, "w", joined, MAX_PHRASE_WORDS)
    for category in _strings(paper.get("categories")):
        category = category.strip().lower()
        keys.add(("c", category))
        keys.add(("c", category.split(".", 1)[0]))
    for author in _strings(paper.get("authors")):
        words = _name_words(author)
        for start in range(len(words)):
            keys.add(("a", *words[start:]))
        if len(words) >= 2:
            keys.add(("af", words[0], words[-1]))
            keys.add(("ai", words[0][0], words[-1]))
    organization = _name_words(_text(paper.get("organization")))[:MAX_ORGANIZATION_WORDS]
    _add_runs(keys, "o", organization, MAX_NAME_WORDS)
    return PaperKeys(frozenset(keys))


# --- matching -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)  # the same interest is held by many readers
def _keys(interest: Interest) -> frozenset[Key]:
    if interest.kind is Kind.category:
        return frozenset({("c", interest.value.lower())})
    if interest.kind is Kind.keyword:
        split, joined = _sequences(interest.value)
        return frozenset({("w", *split), ("w", *joined)})
    words = _name_words(interest.value)
    if interest.kind is Kind.organization:
        return frozenset({("o", *words)})
    found: set[Key] = {("a", *words)}
    if len(words) >= 2 and len(words[0]) == 1:  # "G. Hinton": every G... Hinton
        found.add(("ai", words[0], words[-1]))
    elif len(words) >= 2:  # "Geoffrey Hinton": also "Geoffrey E. Hinton" and "G. Hinton"
        found.update({("af", words[0], words[-1]), ("af", words[0][0], words[-1])})
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A reader's interests made ready to match: :func:`compile_interests` makes it, once per reader."""

    includes: tuple[tuple[Interest, frozenset[Key]], ...] = ()
    excludes: tuple[tuple[Interest, frozenset[Key]], ...] = ()
    include_keys: frozenset[Key] = field(default_factory=frozenset)
    exclude_keys: frozenset[Key] = field(default_factory=frozenset)


def compile_interests(interests: Iterable[Interest]) -> Compiled:
    """Interests as keys. Readers with the same interests may share one (it is never changed)."""
    return _compile(tuple(interests))


@lru_cache(maxsize=4096)  # many readers have the same few interests, or none
def _compile(interests: tuple[Interest, ...]) -> Compiled:
    includes = tuple((i, _keys(i)) for i in interests if i.mode is Mode.include)
    excludes = tuple((i, _keys(i)) for i in interests if i.mode is Mode.exclude)
    return Compiled(includes, excludes, frozenset().union(*(k for _, k in includes)),
                    frozenset().union(*(k for _, k in excludes)))


@dataclass(frozen=True, slots=True)
class Match:
    """Is the paper in, and why: the includes that matched it, the excludes that ruled it out."""

    included: bool
    matched: tuple[Interest, ...] = ()
    excluded_by: tuple[Interest, ...] = ()

    def __bool__(self) -> bool:
        return self.included

    @property
    def why(self) -> str | None:
        """"matches diffusion, cs.LG and Yann LeCun", or None (everything; not included)."""
        if not self.included or not self.matched:
            return None
        labels = [interest.label for interest in self.matched]
        listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
        return f"matches {listed}"


_EVERYTHING = Match(True)
_NOTHING_INCLUDED = Match(False)


def match(paper: PaperKeys | Mapping[str, Any], interests: Compiled | Iterable[Interest]) -> Match:
    """Whether ``paper`` is in for a reader with ``interests``, and which of them decided it.

    For many readers and papers, pass what :func:`prepare` and :func:`compile_interests` made:
    then this is two or three set look-ups, and more only for the interests that matched.
    """
    keys = (paper if isinstance(paper, PaperKeys) else prepare(paper)).keys
    compiled = interests if isinstance(interests, Compiled) else compile_interests(interests)
    if compiled.exclude_keys and not keys.isdisjoint(compiled.exclude_keys):
        return Match(False, excluded_by=tuple(i for i, k in compiled.excludes if not keys.isdisjoint(k)))
    if not compiled.includes:
        return _EVERYTHING
    if keys.isdisjoint(compiled.include_keys):
        return _NOTHING_INCLUDED
    return Match(True, matched=tuple(i for i, k in compiled.includes if not keys.isdisjoint(k)))
