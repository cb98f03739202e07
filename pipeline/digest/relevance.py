"""How much a paper is for one reader: TF-IDF over its words and a small linear model per reader. Pure.

    words      title (twice), summary or abstract, and keywords (twice), stemmed as the interests
               are (``pipeline.words.stem``), without stop words
    vector     TF-IDF over the day's candidates (``Corpus``): sublinear term frequency, smoothed idf,
               L2-normalised
    examples   the reader's votes (+1 "more like this", -1 "less like this") on papers with vectors,
               and their keyword interests as short documents of their own (include +1, exclude -1);
               arxiv-sanity-lite trains an SVM per tag on the same kind of examples, Scholar Inbox a
               logistic regression per user
    model      logistic regression on those examples, with an L2 penalty, a few hundred steps of
               gradient descent from zero (run on one coefficient per example, see ``train``): retrained
               whenever the votes or interests change (on the sample day's papers, a median of about 2 ms
               with 5 votes, 15 ms with 20 and 150 ms with 100: ``bench/relevance_training.py``), and with
               no example at all it says 0.5 for everything
    relevance  sigmoid(w · x), in [0, 1]; ``because`` names the words that pushed it up most

A reader's digest blends it with the trend score: ``blend(trend, relevance, mix)`` with ``mix`` from 0
("mostly trending") to 1 ("mostly for me"); the trend score is first scaled to [0, 1] by the day's best.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import mul
from typing import Any

from pipeline.audience.interests import Interest, Kind, Mode
from pipeline.words import fold, stem

STOP_WORDS = frozenset("""
a about above across after again against all also an and any are as at be been being between both but by can
could did do does done each few for from further had has have having here how however if in into is it its itself
just may more most much must no nor not of off on once only or other our out over own same should so some such
than that the their them then there these they this those through to too under until up upon very via was we
were what when where which while who whom why will with within without would you your
show shows shown propose proposed proposes paper approach method methods result results using use used based new
""".split())
_WORD = re.compile(r"[^\W\d_][^\W_]*")  # words that start with a letter: "3d" and "2025" are not topics
STEPS = 300
RATE = 1.0
PENALTY = 0.01  # L2, per example
TOP_REASONS = 2


def words(paper: Mapping[str, Any]) -> list[str]:
    """The stemmed topic words of a frozen item (title and keywords count twice)."""
    return [s for w in _WORD.findall(fold(_joined(paper))) if w not in STOP_WORDS and (s := stem(w)) not in STOP_WORDS]


def surface_forms(paper: Mapping[str, Any]) -> dict[str, str]:
    """Each stem of :func:`words` with the word it first stands for in the paper ("diffus" → "diffusion"),
    for telling a reader which words their model liked."""
    forms: dict[str, list[str]] = {}
    for written in _WORD.findall(_joined(paper)):
        folded = _WORD.findall(fold(written))
        for word in folded:
            if word not in STOP_WORDS and (stemmed := stem(word)) not in STOP_WORDS:
                forms.setdefault(stemmed, []).append(written if len(folded) == 1 else word)
    return {stemmed: _readable(found) for stemmed, found in forms.items()}


def _readable(forms: Sequence[str]) -> str:
    """A word as a sentence would write it: as an acronym or a name is written if the paper writes it so
    ("QMoE", "DiT"), else in lower case ("Trillion" in a title is "trillion")."""
    marked = next((f for f in forms if any(c.isupper() for c in f[1:])), None)
    return marked if marked is not None else next((f for f in forms if f.islower()), forms[0].lower())


def _joined(paper: Mapping[str, Any]) -> str:
    def text(key: str) -> str:
        value = paper.get(key)
        return value if isinstance(value, str) else ""

    keywords = " ".join(k for k in paper.get("keywords") or () if isinstance(k, str))
    body = text("summary") or text("abstract")
    return " ".join((text("title"), text("title"), body, keywords, keywords))


Vector = dict[str, float]


def _normalised(counts: Mapping[str, float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return {t: v / norm for t, v in counts.items()} if norm else {}


class Corpus:
    """The idf of a day's candidates, and the TF-IDF vector of any text against it."""

    def __init__(self, documents: Iterable[Sequence[str]]) -> None:
        df: Counter[str] = Counter()
        n = 0
        for doc in documents:
            df.update(set(doc))
            n += 1
        self._idf = {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items()}
        self._unseen = math.log(1 + n) + 1  # a word none of the day's papers has

    def vector(self, doc: Sequence[str]) -> Vector:
        tf = Counter(doc)
        return _normalised({t: (1 + math.log(c)) * self._idf.get(t, self._unseen) for t, c in tf.items()})


@dataclass(frozen=True, slots=True)
class Example:
    vector: Vector
    label: int  # +1 or -1
    ref: str = ""  # what it is: the arXiv id voted on, or "keyword:<mode>:<value>"


def examples(corpus: Corpus, *, votes: Mapping[str, int], vectors: Mapping[str, Vector],
             interests: Iterable[Interest] = ()) -> list[Example]:
    """The reader's votes on papers that have a vector, and their keyword interests as documents."""
    found = [Example(vectors[paper], 1 if value > 0 else -1, paper) for paper, value in sorted(votes.items())
             if paper in vectors and value]
    for interest in interests:
        if interest.kind is Kind.keyword:
            doc = [stem(w) for w in _WORD.findall(fold(interest.value)) if w not in STOP_WORDS]
            if doc:
                found.append(Example(corpus.vector(doc), 1 if interest.mode is Mode.include else -1,
                                     f"keyword:{interest.mode.value}:{interest.value}"))
    return found


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True, slots=True)
class Model:
    """A reader's weights per word, and a bias; ``relevance`` and ``because`` read it."""

    weights: Vector
    bias: float = 0.0
    basis: tuple[tuple[str, float], ...] = ()  # (example ref, coefficient): the weights are Σ coefficient × vector

    def relevance(self, vector: Vector) -> float:
        return _sigmoid(self.bias + sum(map(mul, map(self.weights.get, vector, repeat(0.0)), vector.values())))

    def because(self, vector: Vector, limit: int = TOP_REASONS) -> list[str]:
        """The words that raise this paper's relevance most, strongest first (stems, as the model sees them)."""
        pushes = heapq.nlargest(limit, zip(map(mul, map(self.weights.get, vector, repeat(0.0)), vector.values()),
                                           vector))
        return [t for push, t in pushes if push > 0]


NEUTRAL = Model({})


def train(found: Sequence[Example], *, steps: int = STEPS, rate: float = RATE, penalty: float = PENALTY) -> Model:
    """Logistic regression by full-batch gradient descent from zero; deterministic.

    From zero, each step shrinks the weights and adds a multiple of every example's vector, so the weights
    are always ``Σ a_j x_j`` and ``w · x_i = Σ a_j (x_j · x_i)``. The descent therefore runs on one coefficient
    per example, over the examples' dot products taken once: a step costs n² multiplications instead of a pass
    over every word of every example, and the weights are those of descending on the words up to rounding (a
    few 1e-12 relative at most on the sample day).
    """
    if not found:
        return NEUTRAL
    vectors = [ex.vector for ex in found]
    labels = [1.0 if ex.label > 0 else 0.0 for ex in found]
    coefficients = _descend(_gram(vectors), labels, steps=steps, rate=rate, penalty=penalty)
    # The bias only says how many votes were "more": it must not lift or sink papers that share no word.
    return Model(_combined(vectors, coefficients), 0.0, tuple((ex.ref, a) for ex, a in zip(found, coefficients,
                                                                                            strict=True)))


def from_basis(basis: Iterable[Sequence[Any]], found: Sequence[Example]) -> Model:
    """A model kept from an earlier training (its ``basis``), over the examples' vectors as they are today;
    refs without an example today (a paper no longer stored) drop out."""
    by_ref = {ex.ref: ex.vector for ex in found}
    pairs = [(str(ref), float(a)) for ref, a in basis if ref in by_ref]
    if not pairs:
        return NEUTRAL
    return Model(_combined([by_ref[ref] for ref, _ in pairs], [a for _, a in pairs]), 0.0, tuple(pairs))


def _dot(u: Vector, v: Vector) -> float:
    """u · v, over the shorter one's words."""
    if len(u) > len(v):
        u, v = v, u
    return sum(map(mul, u.values(), map(v.get, u, repeat(0.0))))


def _gram(vectors: Sequence[Vector]) -> list[list[float]]:
    """Every pair's dot product, as rows (symmetric)."""
    rows = [[0.0] * len(vectors) for _ in vectors]
    for i, u in enumerate(vectors):
        for j in range(i, len(vectors)):
            rows[i][j] = rows[j][i] = _dot(u, vectors[j])
    return rows


def _descend(gram: Sequence[Sequence[float]], labels: Sequence[float], *, steps: int, rate: float,
             penalty: float) -> list[float]:
    """The examples' coefficients after ``steps`` of gradient descent on the penalised log loss.

    Each step, as on the words: the errors from the current coefficients and bias, then
    ``w ← w - rate (Σ e_j x_j / n + penalty w)``, which is ``a_j ← a_j (1 - rate penalty) - rate e_j / n``,
    then ``bias ← bias - rate Σ e_j / n``. All the steps are taken: at the 300th the coefficients still move by
    1e-4 to 5e-3 of the largest (on the sample day), so stopping once they settle would change the model.
    """
    n = len(labels)
    shrink = 1 - rate * penalty
    coefficients = [0.0] * n
    bias = 0.0
    for _ in range(steps):
        errors = [_sigmoid(bias + sum(map(mul, coefficients, row))) - y for row, y in zip(gram, labels, strict=True)]
        coefficients = [a * shrink - rate * e / n for a, e in zip(coefficients, errors, strict=True)]
        bias -= rate * sum(errors) / n
    return coefficients


def _combined(vectors: Sequence[Vector], coefficients: Sequence[float]) -> Vector:
    """The weights ``Σ a_j x_j``, without the ones that are next to nothing."""
    weights: dict[str, float] = {}
    for vector, a in zip(vectors, coefficients, strict=True):
        for t, x in vector.items():
            weights[t] = weights.get(t, 0.0) + a * x
    return {t: w for t, w in weights.items() if abs(w) > 1e-9}


def blend(trend: float, best_trend: float, relevance: float, mix: float) -> float:
    """(1 - mix) × trend scaled by the day's best + mix × relevance; ``mix`` 0 is the global order."""
    scaled = trend / best_trend if best_trend > 0 else 0.0
    return (1 - mix) * scaled + mix * relevance
