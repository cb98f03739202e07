"""A reader's relevance model: cold start from their interests, moved by their votes, explained by its words."""

from __future__ import annotations

import pytest

from pipeline.audience.interests import Interest, Kind, Mode
from pipeline.digest.relevance import NEUTRAL, Corpus, blend, examples, train, words
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
