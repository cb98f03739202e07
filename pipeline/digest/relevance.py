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
               gradient descent from zero: retrained whenever the votes or interests change (it takes
               milliseconds), and with no example at all it says 0.5 for everything
    relevance  sigmoid(w · x), in [0, 1]; ``because`` names the words that pushed it up most

A reader's digest blends it with the trend score: ``blend(trend, relevance, mix)`` with ``mix`` from 0
("mostly trending") to 1 ("mostly for me"); the trend score is first scaled to [0, 1] by the day's best.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    def text(key: str) -> str:
        value = paper.get(key)
        return value if isinstance(value, str) else ""

    keywords = " ".join(k for k in paper.get("keywords") or () if isinstance(k, str))
    body = text("summary") or text("abstract")
    joined = " ".join((text("title"), text("title"), body, keywords, keywords))
    return [s for w in _WORD.findall(fold(joined)) if w not in STOP_WORDS and (s := stem(w)) not in STOP_WORDS]


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


def examples(corpus: Corpus, *, votes: Mapping[str, int], vectors: Mapping[str, Vector],
             interests: Iterable[Interest] = ()) -> list[Example]:
    """The reader's votes on papers that have a vector, and their keyword interests as documents."""
    found = [Example(vectors[paper], 1 if value > 0 else -1) for paper, value in sorted(votes.items())
             if paper in vectors and value]
    for interest in interests:
        if interest.kind is Kind.keyword:
            doc = [stem(w) for w in _WORD.findall(fold(interest.value)) if w not in STOP_WORDS]
            if doc:
                found.append(Example(corpus.vector(doc), 1 if interest.mode is Mode.include else -1))
    return found


@dataclass(frozen=True, slots=True)
class Model:
    """A reader's weights per word, and a bias; ``relevance`` and ``because`` read it."""

    weights: Vector
    bias: float = 0.0

    def relevance(self, vector: Vector) -> float:
        z = self.bias + sum(self.weights.get(t, 0.0) * x for t, x in vector.items())
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def because(self, vector: Vector, limit: int = TOP_REASONS) -> list[str]:
        """The words that raise this paper's relevance most, strongest first (stems, as the model sees them)."""
        pushes = sorted(((self.weights.get(t, 0.0) * x, t) for t, x in vector.items()), reverse=True)
        return [t for push, t in pushes[:limit] if push > 0]


NEUTRAL = Model({})


def train(found: Sequence[Example], *, steps: int = STEPS, rate: float = RATE, penalty: float = PENALTY) -> Model:
    """Logistic regression by full-batch gradient descent from zero; deterministic."""
    if not found:
        return NEUTRAL
    weights: dict[str, float] = {}
    bias = 0.0
    n = len(found)
    for _ in range(steps):
        grad: dict[str, float] = {}
        grad_bias = 0.0
        for ex in found:
            y = 1.0 if ex.label > 0 else 0.0
            z = bias + sum(weights.get(t, 0.0) * x for t, x in ex.vector.items())
            error = 1 / (1 + math.exp(-max(-30.0, min(30.0, z)))) - y
            grad_bias += error
            for t, x in ex.vector.items():
                grad[t] = grad.get(t, 0.0) + error * x
        for t in set(grad) | set(weights):
            weights[t] = weights.get(t, 0.0) - rate * (grad.get(t, 0.0) / n + penalty * weights.get(t, 0.0))
        bias -= rate * grad_bias / n
    # The bias only says how many votes were "more": it must not lift or sink papers that share no word.
    return Model({t: w for t, w in weights.items() if abs(w) > 1e-9}, 0.0)


def blend(trend: float, best_trend: float, relevance: float, mix: float) -> float:
    """(1 - mix) × trend scaled by the day's best + mix × relevance; ``mix`` 0 is the global order."""
    scaled = trend / best_trend if best_trend > 0 else 0.0
    return (1 - mix) * scaled + mix * relevance
