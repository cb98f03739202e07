"""One reader's selection from an issue's candidates: their interests filter, their model and the trend rank.
Pure: the candidates are an issue's frozen items, ranked by trend score, each with its ``score``.

    kept        the candidates the reader's interests let in (``interests.match``; none: everything)
    order       kept papers by ``relevance.blend(trend, relevance, mix)``: ``mix`` 0 is the global order,
                1 the reader's model alone (0.5 when it knows nothing, so the trend breaks the tie)
    top-up      fewer than ``MIN_MATCHES`` kept: the rest of the digest comes from the global order,
                marked ``also_trending`` (the email puts them under an "Also trending" heading),
                never a paper an exclude matched

Each pick says why it is there: the interests it matched and the words the model liked in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.audience.interests import Compiled, match, prepare
from pipeline.digest.relevance import Corpus, Model, Vector, blend, words

MIN_MATCHES = 3


@dataclass(frozen=True, slots=True)
class Pick:
    index: int  # the item's position in the candidates
    arxiv_id: str
    score: float  # the blend the order is by
    relevance: float
    matched: str | None = None  # "matches diffusion", from the interests
    because: tuple[str, ...] = ()  # the words the reader's model liked in it
    also_trending: bool = False  # not theirs, but trending: topping up a digest with too few matches


class Candidates:
    """An issue's candidates made ready for many readers: their interest keys and vectors, once."""

    def __init__(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.items = list(items)
        self.keys = [prepare(item) for item in self.items]
        documents = [words(item) for item in self.items]
        self.corpus = Corpus(documents)
        self.vectors: list[Vector] = [self.corpus.vector(doc) for doc in documents]
        self.best = max((_trend(item) for item in self.items), default=0.0)


def _trend(item: Mapping[str, Any]) -> float:
    score = item.get("score")
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0


def select(candidates: Candidates, *, interests: Compiled, model: Model, mix: float, size: int,
           exclude: frozenset[str] = frozenset()) -> list[Pick]:
    """The reader's ``size`` papers, best first; ``exclude`` (arXiv ids) are never picked."""
    kept: list[Pick] = []
    ruled_out = set()  # what an exclude matched: not even as a top-up
    for i, item in enumerate(candidates.items):
        arxiv_id = str(item.get("arxiv_id"))
        found = match(candidates.keys[i], interests)
        if found.excluded_by:
            ruled_out.add(i)
        if arxiv_id in exclude or not found:
            continue
        vector = candidates.vectors[i]
        relevance = model.relevance(vector)
        kept.append(Pick(i, arxiv_id, blend(_trend(item), candidates.best, relevance, mix), relevance,
                         found.why, tuple(model.because(vector))))
    kept.sort(key=lambda p: (-round(p.score, 9), p.index))
    picks = kept[:size]
    if len(picks) < min(MIN_MATCHES, size):
        taken = {p.index for p in picks}
        for i, item in enumerate(candidates.items):  # the global order, as the issue ranked it
            if len(picks) >= size:
                break
            arxiv_id = str(item.get("arxiv_id"))
            if i not in taken and i not in ruled_out and arxiv_id not in exclude:
                picks.append(Pick(i, arxiv_id, _trend(item), model.relevance(candidates.vectors[i]),
                                  also_trending=True))
    return picks
