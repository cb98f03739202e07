"""Card snippets: whole sentences within the limit, never a run of words SpamAssassin reads as padding."""

from hypothesis import given
from hypothesis import strategies as st

from pipeline.compose.snippets import reads_as_padding, snippet

RUN = "we propose efficient training through structured sparsity patterns across transformer layers"


def test_whole_sentences_that_fit():
    text = "First sentence here. Second one is longer than the first. Third will not fit at all, being long."
    assert snippet(text, 60) == "First sentence here. Second one is longer than the first."


def test_a_first_sentence_longer_than_the_limit_is_cut_on_a_word():
    out = snippet("A very long opening sentence that keeps going and going past the limit. Next.", 40)
    assert out.endswith("…") and len(out) <= 40 and " " in out and not out[:-1].endswith(" ")


def test_a_run_of_long_words_is_cut_off_at_a_sentence_end_when_there_is_one():
    assert reads_as_padding(f"{RUN} today.") and not reads_as_padding(RUN.replace("structured", "the"))
    assert snippet(f"Models cost a lot to train. {RUN} today.", 280) == "Models cost a lot to train."


def test_a_run_inside_a_sentence_is_cut_with_an_ellipsis():
    out = snippet(f"In the setting of big models and small data, {RUN}.", 280)
    assert out.startswith("In the setting of big models")
    assert not reads_as_padding(out) and out.endswith("…")


def test_a_summary_that_is_nothing_but_the_run_is_left_out():
    assert snippet(f"{RUN} {RUN}.", 280) == ""


def test_ordinary_prose_with_short_words_is_kept():
    text = "We study how the models learn, and show that it is fast. It works on all of the tasks we tried."
    assert not reads_as_padding(text) and snippet(text, 280) == text


@given(st.text(st.sampled_from("abcdefghij .,ABC"), max_size=400), st.integers(30, 300))
def test_never_longer_than_the_limit_and_never_padding(text, limit):
    out = snippet(text, limit)
    assert len(out) <= limit and not reads_as_padding(out)
