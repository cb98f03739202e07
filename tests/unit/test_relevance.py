"""A reader's relevance model: cold start from their interests, moved by their votes, explained by its words."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.audience.interests import Interest, Kind, Mode
from pipeline.digest.relevance import NEUTRAL, Corpus, Example, blend, examples, train, words
from tests.support.relevance_reference import primal_train
from tests.unit.test_render import sample_items

PAPERS = sample_items(25)
DOCS = {p["arxiv_id"]: words(p) for p in PAPERS}
CORPUS = Corpus(DOCS.values())
VECTORS = {aid: CORPUS.vector(doc) for aid, doc in DOCS.items()}
DIFFUSION = [p["arxiv_id"] for p in PAPERS if "diffusion" in p["title"].lower()]
OTHERS = [p["arxiv_id"] for p in PAPERS if "diffusion" not in (p["title"] + p["summary"]).lower()]


def ranked(model) -> list[str]:
    return sorted(VECTORS, key=lambda aid: (-model.relevance(VECTORS[aid]), aid))


def model_for(votes=None, interests=()):
    return train(examples(CORPUS, votes=votes or {}, vectors=VECTORS, interests=interests))


def test_the_sample_day_has_both_kinds_of_paper():
    assert len(DIFFUSION) >= 2 and len(OTHERS) >= 5


def test_words_are_stemmed_topics_without_stop_words():
    got = words({"title": "Training Diffusion Models", "summary": "We propose a new method for the images.",
                 "keywords": ["Vision-Language Models"]})
    assert got.count("diffusion") == 2 and "the" not in got and "propos" not in got and "we" not in got
    assert "imag" in got and got.count("vision") == 2 and "2025" not in words({"title": "2025 3d"})


def test_without_votes_or_interests_everything_is_equally_relevant():
    assert model_for() is NEUTRAL
    assert {round(NEUTRAL.relevance(v), 9) for v in VECTORS.values()} == {0.5}


def test_a_keyword_interest_is_the_cold_start():
    model = model_for(interests=[Interest(Kind.keyword, "diffusion", Mode.include)])
    top = ranked(model)[: len(DIFFUSION)]
    assert set(top) == set(DIFFUSION)
    assert model.because(VECTORS[DIFFUSION[0]])[0] == "diffusion"
    assert all(model.relevance(VECTORS[aid]) == pytest.approx(0.5) for aid in OTHERS)


def test_an_excluded_keyword_sinks_its_papers():
    model = model_for(interests=[Interest(Kind.keyword, "diffusion", Mode.exclude)])
    assert set(ranked(model)[-len(DIFFUSION):]) == set(DIFFUSION)


def test_the_order_moves_with_votes():
    liked = DIFFUSION[0]
    more = model_for({liked: 1})
    others_like_it = [aid for aid in DIFFUSION if aid != liked]
    position = {aid: i for i, aid in enumerate(ranked(more))}
    assert max(position[aid] for aid in others_like_it) < min(position[aid] for aid in OTHERS[:5])
    less = model_for({liked: -1})
    position = {aid: i for i, aid in enumerate(ranked(less))}
    assert min(position[aid] for aid in others_like_it) > max(position[aid] for aid in OTHERS[:5])
    # A second vote replaces the first: the model only ever sees the latest one.
    assert model_for({liked: -1}).weights == less.weights


def test_votes_outweigh_a_single_interest_as_they_accumulate():
    interest = [Interest(Kind.keyword, "diffusion", Mode.include)]
    cold = model_for(interests=interest)
    voted = model_for({aid: -1 for aid in DIFFUSION}, interests=interest)
    assert voted.relevance(VECTORS[DIFFUSION[0]]) < cold.relevance(VECTORS[DIFFUSION[0]])
    assert voted.relevance(VECTORS[DIFFUSION[0]]) < 0.5


def test_votes_on_papers_without_a_vector_are_ignored():
    assert model_for({"9999.99999": 1}) is NEUTRAL


def test_training_is_deterministic():
    votes = {DIFFUSION[0]: 1, OTHERS[0]: -1}
    assert model_for(votes) == model_for(dict(reversed(list(votes.items()))))


@pytest.mark.parametrize(("mix", "expected"), [(0.0, 0.5), (1.0, 0.9), (0.5, 0.7)])
def test_blend_goes_from_the_trend_to_the_reader(mix, expected):
    assert blend(5.0, 10.0, 0.9, mix) == pytest.approx(expected)
    assert blend(5.0, 0.0, 0.9, 0.0) == 0.0


def random_vector(rng, vocabulary):
    """A sparse L2-normalised vector of positive values over a few of the words, as TF-IDF makes them."""
    counts = {t: rng.uniform(0.1, 3.0) for t in rng.sample(vocabulary, rng.randint(1, 25))}
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return {t: v / norm for t, v in counts.items()}


def random_examples(seed, size):
    """``size`` examples over 60 words, with some vectors repeated, under the same label or the other one."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(60)]
    found = []
    while len(found) < size:
        if found and rng.random() < 0.25:
            again = rng.choice(found)
            found.append(Example(again.vector, again.label if rng.random() < 0.5 else -again.label))
        else:
            found.append(Example(random_vector(rng, vocabulary), rng.choice((1, -1))))
    return found


SAME_VECTOR = {"w1": 0.6, "w2": 0.8}
TRAINING_CASES = {
    **{f"random {seed}": random_examples(seed, size) for seed, size in enumerate((2, 3, 7, 12, 20, 30, 45))},
    "a single example": random_examples(100, 1),
    "a single example, less": [Example(SAME_VECTOR, -1)],
    "duplicates": [Example(SAME_VECTOR, 1)] * 3 + [Example({"w2": 0.6, "w3": 0.8}, -1)],
    "opposite labels on one vector": [Example(SAME_VECTOR, 1), Example(SAME_VECTOR, -1)],
    "opposite labels among others": [Example(SAME_VECTOR, 1), Example(SAME_VECTOR, -1), Example({"w2": 1.0}, 1)],
    "a paper with no words": [Example({}, 1), Example(SAME_VECTOR, -1)],
    "the sample day": examples(CORPUS, votes={DIFFUSION[0]: 1, OTHERS[0]: -1, OTHERS[1]: -1}, vectors=VECTORS,
                               interests=[Interest(Kind.keyword, "diffusion", Mode.include)]),
}


@pytest.mark.parametrize("case", TRAINING_CASES)
@pytest.mark.parametrize("settings", [{}, {"steps": 40, "rate": 0.5, "penalty": 0.2}])
def test_training_gives_the_model_of_descending_on_the_words(case, settings):
    found = TRAINING_CASES[case]
    got, expected = train(found, **settings), primal_train(found, **settings)
    assert got.weights.keys() == expected.weights.keys() and got.bias == expected.bias == 0.0
    for t, w in expected.weights.items():
        assert got.weights[t] == pytest.approx(w, rel=1e-9, abs=1e-15), t
    for vector in [ex.vector for ex in found] + list(VECTORS.values()):
        assert got.relevance(vector) == pytest.approx(expected.relevance(vector), rel=1e-10)
        assert got.because(vector) == expected.because(vector)
