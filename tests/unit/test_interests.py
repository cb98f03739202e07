"""A reader's interests: what is accepted and how it is stored, and which papers each one matches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.audience.interests import (
    MAX_INTERESTS,
    Interest,
    Kind,
    Mode,
    add,
    compile_interests,
    dump,
    load,
    match,
    prepare,
    remove,
)
from pipeline.errors import InterestError
from pipeline.words import stem

PAPER = {
    "title": "Scaling Diffusion Transformers for Video Generation",
    "summary": "We train latent diffusion models on hardware accelerators and study their scaling laws.",
    "abstract": "Diffusion models have become the state-of-the-art approach to image synthesis. We pre-train ...",
    "keywords": ["video diffusion", "DiT", "scaling laws"],
    "categories": ["cs.CV", "cs.LG"],
    "authors": ["Yann LeCun", "Geoffrey E. Hinton", "José María Pérez-García", "Laurens van der Maaten"],
    "organization": "Google DeepMind",
}


def interest(kind: str, value: str, mode: str = "include") -> Interest:
    return Interest.parse(kind, value, mode)


def matches(value: str, paper: dict | None = None, kind: str = "keyword") -> bool:
    return match(paper or PAPER, [interest(kind, value)]).included


# --- matching: keywords and phrases ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("diffusion", True),
    ("DIFFUSION", True),  # case
    ("diffusion model", True),  # the phrase, stemmed: "diffusion models"
    ("models diffusion", False),  # its words, but not one after the other
    ("video", True),
    ("vid", False),  # whole words only
    ("transformer", True),  # "Transformers"
    ("accelerator", True),  # "accelerators"
    ("training", True),  # "train"
    ("studies", True),  # "study"
    ("scaling law", True),
    ("pretraining", True),  # "pre-train"
    ("pre training", True),
    ("state of the art", True),  # across hyphens
    ("latent diffusion models on hardware", True),  # the longest phrase kept
    ("diffusion transformers for video generation", True),  # title
    ("dit", True),  # keywords
    ("diffusional", False),  # derivations are other words
    ("transformer video", False),
    ("image", True),  # "image synthesis"
    ("synthesizing", False),  # not an inflection of "synthesis"
])
def test_keywords_match_whole_stemmed_words_and_phrases(value, expected):
    assert matches(value) is expected


def test_a_phrase_does_not_run_from_one_field_into_the_next():
    paper = {"title": "Fast diffusion", "abstract": "Models of everything"}
    assert not matches("diffusion models", paper)
    assert matches("diffusion models", {"keywords": ["fast diffusion", "diffusion models"]})
    assert not matches("diffusion diffusion", {"keywords": ["fast diffusion", "diffusion models"]})


def test_accents_and_hyphens_are_ignored_both_ways():
    assert matches("naive bayes", {"abstract": "A naïve Bayes baseline"})
    assert matches("naïve", {"abstract": "a naive baseline"})
    assert matches("pre-training", {"abstract": "pretraining at scale"})
    assert matches("pre-training", {"abstract": "pre training at scale"})
    assert matches("fine-tuned", {"title": "Fine-Tuning LLMs"})


@pytest.mark.parametrize(("words", "stemmed"), [
    (["accelerator", "accelerators"], "accelerator"),
    (["model", "models", "modeling", "modelling", "modeled"], "model"),
    (["study", "studies", "studied", "studying"], "studi"),
    (["image", "images", "imaging", "imaged"], "imag"),
    (["embed", "embeds", "embedding", "embeddings", "embedded"], "embed"),
    (["loss", "losses"], "loss"),
    (["bias", "biases"], "bias"),
    (["class", "classes"], "class"),
    (["policy", "policies"], "polici"),
    (["run", "running", "runs"], "run"),
    (["need", "needs", "needed"], "need"),
    (["llm", "llms"], "llm"),
])
def test_the_stemmer_brings_every_inflection_to_one_stem(words, stemmed):
    assert {stem(w) for w in words} == {stemmed}


@pytest.mark.parametrize("word", ["diffusion", "analysis", "corpus", "series", "string", "gpt4", "thing", "is"])
def test_the_stemmer_leaves_alone_what_is_not_an_inflection(word):
    assert stem(word) == word
    assert stem(stem(word)) == stem(word)


# --- matching: categories, authors, organizations -----------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("cs.LG", True), ("CS.lg", True), ("cs.CV", True),  # cross-lists count
    ("cs", True),  # the whole archive
    ("cs.CL", False), ("stat.ML", False), ("stat", False), ("hep-th", False),
])
def test_categories_match_exactly_or_as_a_whole_archive(value, expected):
    assert matches(value, kind="category") is expected


def test_a_category_needs_categories_on_the_paper():
    assert not matches("cs.LG", {"title": "cs.LG"}, kind="category")  # not text: the paper's categories
    assert matches("hep-th", {"categories": ["hep-th"]}, kind="category")
    assert not matches("math", {"categories": ["math-ph"]}, kind="category")


@pytest.mark.parametrize(("value", "expected"), [
    ("Yann LeCun", True), ("yann lecun", True), ("LeCun", True),
    ("Geoffrey Hinton", True),  # middle initial left out
    ("Geoffrey E. Hinton", True), ("G. Hinton", True), ("Hinton", True),
    ("Jose Maria Perez-Garcia", True), ("Pérez-García", True), ("perez garcia", True),  # accents, hyphens
    ("José Pérez-García", True),  # first and last
    ("van der Maaten", True), ("Laurens van der Maaten", True),
    ("Yann", False),  # a first name alone is not a surname
    ("LeCu", False), ("Yann Hinton", False), ("Geoffrey LeCun", False), ("H. LeCun", False),
])
def test_authors_match_by_whole_name_surname_or_first_and_last(value, expected):
    assert matches(value, kind="author") is expected


def test_a_full_first_name_matches_an_author_listed_with_an_initial():
    assert matches("Geoffrey Hinton", {"authors": ["G. Hinton"]}, kind="author")
    assert not matches("Geoffrey Hinton", {"authors": ["H. Geoffrey"]}, kind="author")
    assert not matches("Hinton", {"abstract": "Hinton"}, kind="author")  # authors only


@pytest.mark.parametrize(("value", "expected"), [
    ("Google DeepMind", True), ("google deepmind", True), ("Google", True), ("DeepMind", True),
    ("Goog", False), ("Google Research", False), ("Meta", False),
])
def test_organizations_match_by_words_in_order(value, expected):
    assert matches(value, kind="organization") is expected


def test_an_organization_is_not_found_in_other_fields():
    assert not matches("Google", {"abstract": "unlike Google"}, kind="organization")
    assert not matches("Meta", {"organization": "Metamind"}, kind="organization")


# --- include, exclude, everything ----------------------------------------------------------------


def test_no_includes_means_everything():
    assert match(PAPER, []).included
    assert match({}, []).included
    only_excludes = [interest("keyword", "robotics", "exclude")]
    assert match(PAPER, only_excludes).included
    assert match(PAPER, only_excludes).why is None


def test_any_include_must_match_and_says_which():
    reader = [interest("keyword", "robotics"), interest("category", "cs.LG"), interest("author", "Hinton")]
    found = match(PAPER, reader)
    assert found.included
    assert [i.value for i in found.matched] == ["cs.LG", "Hinton"]
    assert found.why == "matches cs.LG and Hinton"
    assert not match(PAPER, [interest("keyword", "robotics")]).included
    assert match(PAPER, [interest("keyword", "diffusion")]).why == "matches diffusion"


def test_excludes_win():
    reader = [interest("keyword", "diffusion"), interest("organization", "Google", "exclude")]
    found = match(PAPER, reader)
    assert not found.included and found.matched == ()
    assert [i.value for i in found.excluded_by] == ["Google"]
    assert match({**PAPER, "organization": "Meta AI"}, reader).included


def test_compiled_forms_give_the_same_answers():
    reader = [interest("keyword", "diffusion"), interest("author", "LeCun"), interest("category", "cs.RO", "exclude")]
    compiled, keys = compile_interests(reader), prepare(PAPER)
    assert match(keys, compiled) == match(PAPER, reader)
    assert compile_interests(reader) is compiled  # readers with the same interests share one


# --- validation and the stored form --------------------------------------------------------------


@pytest.mark.parametrize(("kind", "value", "mode", "message"), [
    ("category", "cs.ML", "include", "not an arXiv category like cs.LG"),
    ("category", "machine learning", "include", "not an arXiv category"),
    ("category", "cs.LG OR all:x", "include", "not an arXiv category"),
    ("keyword", "", "include", "Type the keyword or phrase to include"),
    ("author", "   ", "exclude", "Type the author's name to exclude"),
    ("keyword", "!!! ???", "include", "has no words"),
    ("keyword", "one two three four five six seven eight nine", "include", "at most 8 words"),
    ("keyword", "x" * 101, "include", "at most 100 characters"),
    ("author", "1234", "include", "is not a name"),
    ("topic", "diffusion", "include", "Choose what kind of interest"),
    ("keyword", "diffusion", "maybe", "Choose whether to include or to exclude"),
    (None, "diffusion", "include", "Choose what kind"),
    ("keyword", None, "include", "Type the keyword"),
])
def test_bad_interests_are_refused_with_a_message_for_the_reader(kind, value, mode, message):
    with pytest.raises(InterestError, match=message):
        Interest.parse(kind, value, mode)


def test_interests_are_cleaned_and_categories_written_as_arxiv_does():
    assert Interest.parse("Category", " q-BIO.nc ", "Exclude") == Interest(Kind.category, "q-bio.NC", Mode.exclude)
    assert Interest.parse("category", "COND-MAT.STR-EL").value == "cond-mat.str-el"
    assert Interest.parse("category", "HEP-TH").value == "hep-th"
    assert Interest.parse("keyword", "  diffusion\r\n\u202emodels\x00 ").value == "diffusion models"
    assert Interest.parse("keyword", "diffusion").mode is Mode.include


def test_the_stored_form_round_trips_and_bad_stored_items_are_left_out():
    kept = [interest("category", "cs.LG"), interest("author", "Yann LeCun", "exclude")]
    stored = dump(kept)
    assert stored == [{"kind": "category", "value": "cs.LG", "mode": "include"},
                      {"kind": "author", "value": "Yann LeCun", "mode": "exclude"}]
    assert load(stored) == kept
    junk = ["diffusion", None, 3, {"kind": "keyword"}, {"kind": "category", "value": "xx.YY"}, {"value": "x"},
            {"kind": "keyword", "value": "Diffusion Models"}, {"kind": "keyword", "value": "diffusion model"}]
    assert load(junk) == [interest("keyword", "Diffusion Models")]  # the repeat goes too
    assert load(None) == [] and load({"kind": "keyword"}) == []
    many = [{"kind": "keyword", "value": f"word{n}"} for n in range(MAX_INTERESTS + 5)]
    assert len(load(many)) == MAX_INTERESTS


def test_adding_dedupes_switches_modes_and_stops_at_the_limit():
    kept, change = add([], interest("keyword", "Diffusion Models"))
    assert change == "added"
    assert add(kept, interest("keyword", "diffusion model")) == (kept, "already")
    switched, change = add(kept, interest("keyword", "diffusion models", "exclude"))
    assert change == "switched" and switched == [interest("keyword", "diffusion models", "exclude")]
    assert add(kept, interest("author", "Diffusion Models"))[1] == "added"  # another kind, another interest
    full = [interest("keyword", f"word{n}") for n in range(MAX_INTERESTS)]
    with pytest.raises(InterestError, match=f"at most {MAX_INTERESTS} interests"):
        add(full, interest("keyword", "one more"))
    assert add(full, interest("keyword", "word3", "exclude"))[1] == "switched"  # not one more


def test_removing_goes_by_kind_and_value_whatever_the_mode():
    kept = [interest("keyword", "diffusion", "exclude"), interest("category", "cs.LG")]
    assert remove(kept, interest("keyword", "Diffusion")) == [interest("category", "cs.LG")]
    assert remove(kept, interest("author", "diffusion")) == kept


# --- hostile input -------------------------------------------------------------------------------


def test_papers_with_missing_or_odd_fields_are_matched_without_error():
    reader = [interest("keyword", "diffusion"), interest("author", "LeCun"), interest("category", "cs.LG"),
              interest("organization", "Google")]
    for paper in ({}, {"title": None, "authors": None, "categories": None, "organization": None},
                  {"title": 3, "authors": "Yann LeCun", "keywords": [None, 4, "diffusion"], "categories": "cs.LG"},
                  {"authors": [{"name": "LeCun"}], "organization": ["Google"], "abstract": b"diffusion"},
                  {"title": "\x00\u202ediffusion\ud800", "authors": [""], "categories": [""]}):
        match(paper, reader)
    assert match({"authors": "Yann LeCun"}, reader).included  # one name, not a list
    assert match({"keywords": [None, 4, "diffusion"]}, reader).included
    assert match({"title": "\x00\u202ediffusion"}, reader).included


def test_a_huge_paper_is_bounded():
    paper = {"abstract": "diffusion " * 1_000_000, "authors": [f"Author {n}" for n in range(100_000)]}
    assert match(paper, [interest("keyword", "diffusion")]).included


@given(kind=st.sampled_from(list(Kind)), value=st.text(max_size=120), mode=st.sampled_from(list(Mode)),
       text=st.text(max_size=200))
def test_any_text_either_is_refused_cleanly_or_round_trips_and_matches_without_error(kind, value, mode, text):
    try:
        parsed = Interest.parse(kind.value, value, mode.value)
    except InterestError:
        return
    assert len(parsed.value) <= 100 and parsed.value == parsed.value.strip()
    assert Interest.from_json(parsed.to_json()) == parsed
    paper = {"title": text, "abstract": text, "keywords": [text], "categories": [text], "authors": [text],
             "organization": text}
    match(paper, [parsed])
    own = {Kind.keyword: {"title": parsed.value}, Kind.author: {"authors": [parsed.value]},
           Kind.organization: {"organization": parsed.value}, Kind.category: {"categories": [parsed.value]}}[kind]
    found = match(own, [parsed])  # an interest always finds its own words
    assert (found.matched or found.excluded_by) == (parsed,)
