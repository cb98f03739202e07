"""An issue's digest as blocks, so that any reader's selection of its papers is a join, not a render.

The digest templates are rendered once per issue with every candidate, in three sizes of card
(``full``; ``short``, a shorter snippet; ``bare``, no snippet, thumbnail or feedback links), with
markers (``cut``) where the document may be cut. Between the markers lie the blocks: the header and
footer, the table of contents' entries, the "Also trending" heading, and each paper's card, in the
HTML part and the text part. The few values that depend on the selection rather than on the paper —
the paper count, a card's position, the interests it matched and so its "why" line — are holes,
filled by :func:`holes` here and in a plain render alike, so the two cannot disagree.

A reader's digest is then the header, their cards in their order (the lowest-ranked losing their
extras when the whole would pass ``HTML_LIMIT``) and the footer: strings joined, no MJML, premailer
or template per reader. :mod:`pipeline.compose.assembly` joins the same blocks already MIME-encoded.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.compose import slots

log = logging.getLogger(__name__)

HTML_LIMIT = 90_000  # bytes of HTML: Gmail clips a message past about 102 KB, and what it cuts is the footer
TOKEN_ALLOWANCE = 100  # characters of a signed link token (about 75), with room to spare
TEXT_WIDTH = 78
TOC_FROM = 11  # papers from which the digest opens with a table of contents
VARIANTS = ("full", "short", "bare")  # the card sizes, most to least
HOLES = frozenset({"count", "rank", "lead", "match", "t-rank", "t-num", "t-why"})
WHY_LEAD = "Why it's trending:"
WHY_LEAD_MATCHED = "Why it's here:"
HOLE_ROOM = 64  # bytes a block's holes take at most besides a match's text (a number, a lead, "; ", a count)

Piece = str | tuple[str]  # fixed text, or (hole name,)
Pieces = list[Piece]


@dataclass(frozen=True, slots=True)
class Chosen:
    """One paper of a reader's digest: which candidate, and why this reader gets it."""

    index: int  # the candidate's place in the issue's items (0 = the top of the trend ranking)
    match: str | None = None  # "matches diffusion": the reader's interests that let it in
    also: bool = False  # not theirs but trending, topping up a digest: under "Also trending"


Selection = tuple[Chosen, ...]


def top(n: int) -> Selection:
    """The global digest of ``n`` papers: the trend ranking's first ``n``."""
    return tuple(Chosen(i) for i in range(n))


def wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """A paragraph of the text part; URLs and long words are never split."""
    return textwrap.fill(text, width=width, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def number(position: int) -> str:
    """A paper's number at the start of its title line in the text part."""
    return f"{position}.".ljust(4)


def count_label(n: int) -> str:
    return f" · {n} paper{'' if n == 1 else 's'}" if n else ""


@functools.lru_cache(maxsize=65_536)  # few positions, few interests, one why line per paper
def holes(position: int, match: str | None, why: str) -> Mapping[str, str]:
    """One card's text that depends on the selection: its position, its why line's lead, the interests it
    matched, and the text part's why paragraph (wrapped, as its length decides the lines)."""
    lead = WHY_LEAD_MATCHED if match else WHY_LEAD
    matched = f"{match}; " if match else ""
    return {
        "rank": f"#{position}",
        "t-rank": number(position),
        "t-num": number(position),
        "lead": lead,
        "match": matched,
        "t-why": wrap(f"{lead} {matched}{why}", "    ") + "\n" if why else "",
    }


class Cutter:
    """The ``cut`` the templates call: a marker no paper's text can forge, as it carries a nonce."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self.pattern = re.compile(rf"pm-cut-{self.nonce}\.([a-z-]+)\.(\d+)\.")

    def __call__(self, name: str, index: int = 0) -> str:
        return f"pm-cut-{self.nonce}.{name}.{index}."


def no_cut(name: str, index: int = 0) -> str:
    """``cut`` for a plain render: no markers."""
    return ""


def split(document: str, cutter: Cutter) -> dict[tuple[str, int], Pieces]:
    """A rendered document's blocks by (name, index), each its fixed text and holes in order.

    Text before the first marker is block ("head", 0). A hole's marker is followed by what a plain render
    prints there and then by a marker resuming its block: that text is dropped, :func:`holes` fills it.
    """
    blocks: dict[tuple[str, int], Pieces] = {("head", 0): []}
    key, pos, in_hole = ("head", 0), 0, False
    for found in cutter.pattern.finditer(document):
        if not in_hole:
            _add(blocks[key], document[pos:found.start()])
        name, index = found.group(1), int(found.group(2))
        if name in HOLES:
            blocks[key].append((name,))
        else:
            key = (name, index)
            blocks.setdefault(key, [])
        in_hole = name in HOLES
        pos = found.end()
    if in_hole:
        raise ValueError("the document ends inside a hole")
    _add(blocks[key], document[pos:])
    return blocks


def _add(pieces: Pieces, text: str) -> None:
    if not text:
        return
    if pieces and isinstance(pieces[-1], str):
        pieces[-1] += text
    else:
        pieces.append(text)


def sent_bytes(pieces: Sequence[Piece], site_url: str) -> int:
    """The fixed pieces' bytes in the HTML a reader gets: each body slot becomes one of their links (the
    site's address, a path and a signed token), at most this much longer."""
    growth = len(site_url.encode()) + len("/u/") + TOKEN_ALLOWANCE
    return sum(len(p.encode()) + sum(p.count(s) * (growth - len(s)) for s in slots.BODY_SLOTS)
               for p in pieces if isinstance(p, str))


@dataclass(slots=True)
class Card:
    """One candidate's card in one size: its HTML and text pieces, and its HTML's size as sent."""

    html: Pieces
    text: Pieces
    sent_bytes: int


@dataclass(slots=True)
class IssueBlocks:
    """Everything a reader's digest is joined from; ``cards[i][variant]`` is candidate ``i``'s card."""

    subjects: list[str]  # the subject when candidate i leads the digest
    subject_empty: str
    whys: list[str]  # each candidate's trend line, as its card shows it
    parts: dict[str, Pieces]  # "html-head", "html-toc", "html-toc-end", "html-also", "html-tail", "text-…"
    toc_items: dict[str, list[Pieces]]  # "html", "text": candidate i's entry in the table of contents
    cards: list[dict[str, Card]]
    site_url: str
    _sizes: dict[int, int] = field(default_factory=dict, repr=False)  # sent bytes of the frame's blocks

    def plan(self, selection: Selection) -> list[str]:
        """The card size for each chosen paper: all ``full`` if the HTML fits ``HTML_LIMIT``, else all
        ``short``, else the lowest-ranked ``bare``, from the bottom up, until it fits. The papers, their
        links and the footer always stay."""
        if self._surely_fits(selection):
            return ["full"] * len(selection)
        fixed = 0
        for pieces, values in self._frame(selection, "html"):
            fixed += self._sent(pieces) + _hole_bytes(pieces, values)
        for position, chosen in enumerate(selection, 1):
            values = holes(position, chosen.match, self.whys[chosen.index])
            fixed += _hole_bytes(self.cards[chosen.index]["full"].html, values)
        sizes = {v: [self.cards[c.index][v].sent_bytes for c in selection] for v in VARIANTS}
        if fixed + sum(sizes["full"]) <= HTML_LIMIT:
            return ["full"] * len(selection)
        for keep in range(len(selection), -1, -1):
            if fixed + sum(sizes["short"][:keep]) + sum(sizes["bare"][keep:]) <= HTML_LIMIT:
                return ["short"] * keep + ["bare"] * (len(selection) - keep)
        log.warning("a digest's HTML is over %d bytes even with every card bare", HTML_LIMIT)
        return ["bare"] * len(selection)

    def _surely_fits(self, selection: Selection) -> bool:
        """Whether the whole cards fit even with the most a hole can hold (most selections: checked cheaply)."""
        if len(selection) >= TOC_FROM or any(c.also for c in selection):
            return False
        frame = self._sent(self.parts["html-head"]) + self._sent(self.parts["html-tail"]) + HOLE_ROOM
        cards = sum(self.cards[c.index]["full"].sent_bytes + HOLE_ROOM + (len(html_escape(c.match).encode())
                    if c.match else 0) for c in selection)
        return frame + cards <= HTML_LIMIT

    def _sent(self, pieces: Pieces) -> int:
        key = id(pieces)
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = sent_bytes(pieces, self.site_url)
        return size

    def _frame(self, selection: Selection, part: str) -> Iterator[tuple[Pieces, Mapping[str, str]]]:
        """The blocks besides the cards: the header, the table of contents (from ``TOC_FROM`` papers) and
        the footer, with the hole values they take."""
        yield self.parts[f"{part}-head"], {"count": count_label(len(selection))}
        if len(selection) >= TOC_FROM:
            yield self.parts[f"{part}-toc"], {}
            for position, chosen in enumerate(selection, 1):
                yield self.toc_items[part][chosen.index], {"t-num": number(position)}
            yield self.parts[f"{part}-toc-end"], {}
        if any(c.also for c in selection):
            yield self.parts[f"{part}-also"], {}
        yield self.parts[f"{part}-tail"], {}

    def sequence(self, selection: Selection, part: str,
                 plan: Sequence[str] | None = None) -> Iterator[tuple[Pieces, Mapping[str, str]]]:
        """The digest's blocks in order, each with its hole values; ``part`` is "html" or "text", ``plan``
        what :meth:`plan` says for this selection."""
        if not selection and self.cards:
            raise ValueError("an empty selection is never sent")
        if any(a.also and not b.also for a, b in zip(selection, selection[1:], strict=False)):
            raise ValueError("the topped-up papers come after the reader's own")
        frame = list(self._frame(selection, part))
        also = self.parts[f"{part}-also"]
        yield from (block for block in frame[:-1] if block[0] is not also)
        for position, (chosen, variant) in enumerate(zip(selection, plan or self.plan(selection), strict=True), 1):
            if chosen.also and (position == 1 or not selection[position - 2].also):
                yield also, {}
            card = self.cards[chosen.index][variant]
            yield (card.html if part == "html" else card.text), holes(position, chosen.match,
                                                                      self.whys[chosen.index])
        yield frame[-1]

    def subject(self, selection: Selection) -> str:
        return self.subjects[selection[0].index] if selection else self.subject_empty

    def joined(self, selection: Selection) -> tuple[str, str, str]:
        """(subject, HTML, text) of a selection, as strings."""
        plan = self.plan(selection)
        html = "".join(fill(pieces, values, html=True) for pieces, values in self.sequence(selection, "html", plan))
        text = "".join(fill(pieces, values, html=False) for pieces, values in self.sequence(selection, "text", plan))
        return self.subject(selection), html, text

    def to_json(self) -> dict[str, Any]:
        return {
            "subjects": self.subjects, "subject_empty": self.subject_empty, "whys": self.whys,
            "site_url": self.site_url,
            "parts": {k: _pieces_json(v) for k, v in self.parts.items()},
            "toc_items": {k: [_pieces_json(p) for p in v] for k, v in self.toc_items.items()},
            "cards": [{v: {"html": _pieces_json(c.html), "text": _pieces_json(c.text), "sent_bytes": c.sent_bytes}
                       for v, c in card.items()} for card in self.cards],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssueBlocks:
        return cls(
            subjects=list(data["subjects"]), subject_empty=data["subject_empty"], whys=list(data["whys"]),
            site_url=data["site_url"],
            parts={k: _pieces(v) for k, v in data["parts"].items()},
            toc_items={k: [_pieces(p) for p in v] for k, v in data["toc_items"].items()},
            cards=[{v: Card(_pieces(c["html"]), _pieces(c["text"]), c["sent_bytes"]) for v, c in card.items()}
                   for card in data["cards"]],
        )


def fill(pieces: Pieces, values: Mapping[str, str], *, html: bool) -> str:
    """A block's text with its holes filled (escaped for the HTML part, as autoescape would)."""
    return "".join(p if isinstance(p, str) else (html_escape(values[p[0]]) if html else values[p[0]])
                   for p in pieces)


def _hole_bytes(pieces: Pieces, values: Mapping[str, str]) -> int:
    return sum(len(html_escape(values[p[0]]).encode()) for p in pieces if isinstance(p, tuple))


def html_escape(value: str) -> str:
    """A hole's value as text in the HTML, written as premailer (lxml) writes text: every hole is text
    between tags, never an attribute."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _pieces_json(pieces: Pieces) -> list[Any]:
    return [p if isinstance(p, str) else {"hole": p[0]} for p in pieces]


def _pieces(data: list[Any]) -> Pieces:
    return [p if isinstance(p, str) else (p["hole"],) for p in data]
