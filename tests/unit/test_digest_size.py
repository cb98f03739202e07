"""The digest's HTML stays under Gmail's clipping size with every field at its limit; when a day would not
fit, snippets shrink and then go, lowest-ranked first, and the papers, their links and the footer stay."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.compose import blocks, render, slots
from pipeline.compose.blocks import HTML_LIMIT
from pipeline.compose.cards import SUMMARY_LIMIT, TITLE_LIMIT, WHY_LIMIT
from pipeline.compose.render import render_digest
from pipeline.models import MAX_DIGEST_SIZE
from tests.unit.test_render import CTX, Doc, sample_items

WITH_IMAGES = dataclasses.replace(CTX, images="proxied", site_url="https://papers-of-a-rather-long-name.example.org")

SENTENCE = "Training large models costs a great deal of compute, and we show how to spend less of it. "


def worst_day(n: int = MAX_DIGEST_SIZE) -> list[dict]:
    """The sample papers with every field at its length limit: titles, full summaries, the why line, many
    authors with long names, and every link."""
    items = sample_items(n)
    for i, item in enumerate(items):
        item.update(
            title=("Scaling Extraordinarily Comprehensive Architectures " * 5)[:TITLE_LIMIT + 20],
            summary=SENTENCE * 30, why=("+179 upvotes in 12 h · 40 GitHub stars · " * 6)[:WHY_LIMIT + 20],
            authors=[f"Maximiliana Alexandrovna Longname-Hyphenated {j}" for j in range(30)],
            github_repo=f"https://github.com/some-organisation/a-rather-long-repository-name-{i}",
            project_page=f"https://some-organisation.github.io/a-rather-long-project-page-{i}/index.html",
            github_stars=12345, comments=999, upvotes=9999,
            organization="The Institute for Extraordinarily Comprehensive Research on Everything " * 3,
            thumbnail={"digest": f"{i:064x}", "width": 1144, "height": 618,
                       "url": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{i}.png"},
        )
    return items


def as_sent(html: str) -> bytes:
    """The HTML with a subscriber's own links in place of the placeholders."""
    token = "uid0123456789abcdef." + "s" * 43
    return (html.replace(slots.UNSUBSCRIBE_URL, f"https://papers.example.org/u/{token}")
            .replace(slots.PREFERENCES_URL, f"https://papers.example.org/p/{token}")
            .replace(slots.FEEDBACK_URL, f"https://papers.example.org/f/{token}")).encode()


def test_the_worst_day_fits_and_keeps_a_short_snippet_on_most_cards():
    rendered = render_digest(worst_day(), ctx=CTX)
    assert len(as_sent(rendered.html)) <= HTML_LIMIT
    summaries = [t for t in Doc(rendered.html).text if t.startswith("Training large models")]
    assert len(summaries) >= MAX_DIGEST_SIZE * 2 // 3 and all(len(s) <= SUMMARY_LIMIT for s in summaries)
    assert "<img" not in rendered.html


def test_with_thumbnails_the_worst_day_fits_and_the_top_papers_keep_theirs():
    rendered = render_digest(worst_day(), ctx=WITH_IMAGES)
    assert len(as_sent(rendered.html)) <= HTML_LIMIT
    cards = rendered.html.split(' id="p')[1:]
    assert len(cards) == MAX_DIGEST_SIZE and "Unsubscribe" in rendered.html.rsplit(' id="p', 1)[1]
    pictured = ['<img class="im" src="https://papers-of-a-rather-long-name.example.org/images/' in card
                for card in cards]
    with_snippet = ["Training large models" in card for card in cards]
    assert pictured == with_snippet == sorted(pictured, reverse=True)  # the extras go from the bottom up
    assert 0 < sum(pictured) < MAX_DIGEST_SIZE


@pytest.fixture
def small_limit(monkeypatch):
    """A limit the worst day fits under without snippets, and with a few short ones, not with all of them."""
    bare = render_digest([{**item, "summary": ""} for item in worst_day()], ctx=CTX).html
    limit = render.sent_size(bare, CTX.site_url) + 2_000
    monkeypatch.setattr(blocks, "HTML_LIMIT", limit)
    return limit


def test_too_long_a_day_loses_snippets_from_the_bottom_and_keeps_everything_else(small_limit):
    rendered = render_digest(worst_day(), ctx=CTX)
    assert render.sent_size(rendered.html, CTX.site_url) <= small_limit
    doc = Doc(rendered.html)
    summaries = [t for t in doc.text if t.startswith("Training large models")]
    assert 0 < len(summaries) < MAX_DIGEST_SIZE and all(len(s) <= render.SHORT_SUMMARY_LIMIT for s in summaries)
    # Every paper and its links are there, and the footer with its unsubscribe link, last.
    hrefs = [a["href"] for a in doc.anchors()]
    assert all(item["url"] in hrefs and item["github_repo"] in hrefs for item in worst_day())
    footer_unsubscribe = len(hrefs) - 1 - hrefs[::-1].index(slots.UNSUBSCRIBE_URL)
    assert footer_unsubscribe > hrefs.index(worst_day()[-1]["project_page"])  # after the last paper
    # The snippets kept are the top-ranked papers' (the first cards).
    cards = rendered.html.split(' id="p')[1:]
    with_snippet = ["Training large models" in card for card in cards]
    assert with_snippet == sorted(with_snippet, reverse=True)


def test_an_unsubscribe_and_a_view_in_browser_link_come_before_the_first_paper():
    rendered = render_digest(worst_day(), ctx=CTX)
    first_paper = rendered.html.index('class="card"')  # the contents, then the papers
    top = Doc(rendered.html[:first_paper]).anchors()
    assert {a["href"] for a in top} >= {slots.UNSUBSCRIBE_URL, CTX.archive_url}
    assert rendered.text.index(slots.UNSUBSCRIBE_URL) < rendered.text.index("1.  ")
