"""One reader's selection from an issue's candidates: their interests filter, their model and the trend rank.
Pure: the candidates are an issue's frozen items, ranked by trend score, each with its ``score``.

    kept        the candidates the reader's interests let in (``interests.match``; none: everything)
    order       kept papers by ``relevance.blend(trend, relevance, mix)``: ``mix`` 0 is the global order,
                1 the reader's model alone (0.5 when it knows nothing, so the trend breaks the tie)
    top-up      fewer than ``MIN_MATCHES`` kept: the rest of the digest comes from the global order,
                marked ``also_trending`` (the email puts them under an "Also trending" heading),
                never a paper an exclude matched
    nothing     none kept: nothing is sent, unless the reader asked to get the trending list anyway
    sent        a paper the reader was sent before comes again only once its trend score has at least
                doubled (``REPEAT_FACTOR``) since
    among       the candidates open to this reader: by default the day's own; a reader back from a pause
                also gets the best of the days they missed (the issue carries them)

Each pick says why it is there: the interests it matched and the words the model liked in it
(``reason``: what its card's why line says before the trend).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipeline.audience.interests import Compiled, match, prepare
from pipeline.digest.relevance import NEUTRAL, Corpus, Model, Vector, blend, surface_forms, words

MIN_MATCHES = 3
NEUTRAL_RELEVANCE = NEUTRAL.relevance({})  # what a model that knows nothing says of any paper: 0.5


@dataclass(frozen=True, slots=True)
class Pick:
    index: int  # the item's position in the candidates
    arxiv_id: str
    score: float  # the blend the order is by
    relevance: float
    matched: str | None = None  # "matches diffusion", from the interests
    because: tuple[str, ...] = ()  # the words the reader's model liked in it, as the paper writes them
    also_trending: bool = False  # not theirs, but trending: topping up a digest with too few matches


class Candidates:
    """An issue's candidates made ready for many readers: their interest keys and vectors, once."""

    def __init__(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.items = list(items)
        self.keys = [prepare(item) for item in self.items]
        documents = [words(item) for item in self.items]
        self.surface = [surface_forms(item) for item in self.items]
        self.corpus = Corpus(documents)
        self.vectors: list[Vector] = [self.corpus.vector(doc) for doc in documents]
        self.best = max((_trend(item) for item in self.items), default=0.0)


def _trend(item: Mapping[str, Any]) -> float:
    score = item.get("score")
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0


def select(candidates: Candidates, *, interests: Compiled, model: Model, mix: float, size: int,
           sent: Mapping[str, float] | None = None, among: Collection[int] | None = None,
           send_anyway: bool = True) -> list[Pick]:
    """The reader's ``size`` papers, best first; empty when nothing is for them (and not ``send_anyway``).

    ``sent`` maps the arXiv ids sent to this reader before to their trend score then; ``among`` are the
    indices of the candidates open to them (None: all).
    """
    sent = sent or {}
    open_to = range(len(candidates.items)) if among is None else sorted(among)
    blocked = {i for i in open_to if not _may_repeat(candidates.items[i], sent)}
    kept: list[Pick] = []
    ruled_out = set()  # what an exclude matched: not even as a top-up
    for i in open_to:
        item = candidates.items[i]
        arxiv_id = str(item.get("arxiv_id"))
        found = match(candidates.keys[i], interests)
        if found.excluded_by:
            ruled_out.add(i)
        if i in blocked or not found:
            continue
        relevance = model.relevance(candidates.vectors[i]) if model.weights else NEUTRAL_RELEVANCE
        kept.append(Pick(i, arxiv_id, blend(_trend(item), candidates.best, relevance, mix), relevance, found.why))
    kept.sort(key=lambda p: (-round(p.score, 9), p.index))
    # Why the model liked it, for the picks only (the words are sorted per paper).
    picks = [replace(p, because=tuple(candidates.surface[p.index].get(stemmed, stemmed)
                                      for stemmed in model.because(candidates.vectors[p.index])))
             if model.weights else p for p in kept[:size]]
    if not picks and not send_anyway:
        return []
    if len(picks) < min(MIN_MATCHES, size):
        taken = {p.index for p in picks}
        for i in open_to:  # the global order, as the issue ranked it
            if len(picks) >= size:
                break
            if i not in taken and i not in ruled_out and i not in blocked:
                item = candidates.items[i]
                picks.append(Pick(i, str(item.get("arxiv_id")), _trend(item),
                                  model.relevance(candidates.vectors[i]) if model.weights else NEUTRAL_RELEVANCE,
                                  also_trending=True))
    return picks


def reason(pick: Pick, mix: float) -> str | None:
    """What the pick's why line says before the trend: the interests it matched, else, when the reader's votes
    lifted it, the words their model liked in it ("close to what you liked: diffusion, video"); None when
    neither (the trend alone put it there)."""
    if pick.matched or pick.also_trending:
        return pick.matched
    if pick.because and mix > 0 and pick.relevance > LIKED:
        return f"close to what you liked: {', '.join(pick.because)}"
    return None


LIKED = 0.55  # the reader's model thinks the paper is theirs: clearly above the 0.5 of knowing nothing
REPEAT_FACTOR = 2.0


def _may_repeat(item: Mapping[str, Any], sent: Mapping[str, float]) -> bool:
    before = sent.get(str(item.get("arxiv_id")))
    return before is None or _trend(item) >= REPEAT_FACTOR * before > 0
