"""One reader's selection: filtered by their interests, ordered by trend and their model, topped up when thin."""

from __future__ import annotations

from pipeline.audience.interests import Interest, Kind, Mode, compile_interests
from pipeline.digest.personal import Candidates, reason, select
from pipeline.digest.relevance import NEUTRAL, examples, train
from tests.unit.test_render import sample_items

ITEMS = [{**item, "score": 100.0 - rank} for rank, item in enumerate(sample_items(25))]
CANDIDATES = Candidates(ITEMS)
EVERYTHING = compile_interests([])
GLOBAL = [item["arxiv_id"] for item in ITEMS]
DIFFUSION = [i["arxiv_id"] for i in ITEMS if "diffusion" in (i["title"] + i["summary"]).lower()]


def ids(picks) -> list[str]:
    return [p.arxiv_id for p in picks]


def test_a_reader_with_no_interests_and_no_votes_gets_the_global_list():
    for mix in (0.0, 0.5, 1.0):
        assert ids(select(CANDIDATES, interests=EVERYTHING, model=NEUTRAL, mix=mix, size=10)) == GLOBAL[:10]


def test_interests_filter_and_say_why():
    interests = compile_interests([Interest(Kind.keyword, "diffusion", Mode.include)])
    picks = select(CANDIDATES, interests=interests, model=NEUTRAL, mix=0.5, size=10)
    assert ids(picks) == DIFFUSION[:10] and len(picks) >= 3
    assert {p.matched for p in picks} == {"matches diffusion"} and not any(p.also_trending for p in picks)


def test_too_few_matches_are_topped_up_from_the_trend_but_never_with_an_excluded_paper():
    author = next(i["authors"][0] for i in reversed(ITEMS) if i["arxiv_id"] not in DIFFUSION and i["authors"])
    interests = compile_interests([Interest(Kind.author, author, Mode.include),
                                   Interest(Kind.keyword, "diffusion", Mode.exclude)])
    picks = select(CANDIDATES, interests=interests, model=NEUTRAL, mix=0.5, size=10)
    theirs = [p for p in picks if not p.also_trending]
    assert 1 <= len(theirs) < 3 and len(picks) == 10
    assert all(p.also_trending for p in picks[len(theirs):])
    assert not set(ids(picks)) & set(DIFFUSION)


def stem_of_each(words_):
    from pipeline.words import stem

    return {stem(w) for w in words_}


def model_for(votes):
    vectors = {i["arxiv_id"]: v for i, v in zip(ITEMS, CANDIDATES.vectors, strict=True)}
    return train(examples(CANDIDATES.corpus, votes=votes, vectors=vectors))


def test_votes_move_the_order_more_the_more_the_reader_asks_for_it():
    liked = GLOBAL[-2]  # near the bottom of the trend order
    model = model_for({liked: 1})
    places = {mix: ids(select(CANDIDATES, interests=EVERYTHING, model=model, mix=mix, size=25)).index(liked)
              for mix in (0.0, 0.5, 0.8, 1.0)}
    assert places[0.0] == GLOBAL.index(liked)  # "mostly trending" at its end: the global order
    assert places[0.0] > places[0.5] > places[0.8] >= places[1.0] == 0
    top = select(CANDIDATES, interests=EVERYTHING, model=model, mix=1.0, size=1)[0]
    text = (ITEMS[top.index]["title"] + " " + ITEMS[top.index]["summary"]).lower()
    assert top.because and all(word.lower() in text for word in top.because)  # words as the paper writes them
    assert stem_of_each(top.because) <= set(CANDIDATES.vectors[top.index])
    assert reason(top, 1.0) == f"close to what you liked: {', '.join(top.because)}" and reason(top, 0.0) is None
    disliked = ids(select(CANDIDATES, interests=EVERYTHING, model=model_for({GLOBAL[0]: -1}), mix=1.0, size=25))
    assert disliked[-1] == GLOBAL[0]


def test_papers_already_sent_are_not_picked_unless_their_trend_has_doubled():
    score = {item["arxiv_id"]: item["score"] for item in ITEMS}
    sent = {GLOBAL[0]: score[GLOBAL[0]], GLOBAL[1]: score[GLOBAL[1]] / 2, GLOBAL[2]: score[GLOBAL[2]] / 1.9}
    picks = select(CANDIDATES, interests=EVERYTHING, model=NEUTRAL, mix=0.5, size=10, sent=sent)
    assert ids(picks) == [GLOBAL[1], *GLOBAL[3:12]]  # doubled exactly: again; 1.9 times: not yet


def test_a_day_with_nothing_for_the_reader_sends_nothing_unless_they_want_the_trending_list_anyway():
    nothing = compile_interests([Interest(Kind.keyword, "xylophone quartet", Mode.include)])
    assert select(CANDIDATES, interests=nothing, model=NEUTRAL, mix=0.5, size=10, send_anyway=False) == []
    anyway = select(CANDIDATES, interests=nothing, model=NEUTRAL, mix=0.5, size=10, send_anyway=True)
    assert ids(anyway) == GLOBAL[:10] and all(p.also_trending for p in anyway)


def test_only_the_candidates_open_to_the_reader_are_picked():
    among = range(5, 25)
    picks = select(CANDIDATES, interests=EVERYTHING, model=NEUTRAL, mix=0.5, size=10, among=among)
    assert ids(picks) == GLOBAL[5:15]
