"""The feed builders, from plain data: Atom as RFC 4287 asks, JSON Feed as 1.1 asks, and no markup from outside."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from html import unescape

import pytest

from pipeline.compose.feeds import FeedEntry, FeedInfo, atom_feed, entry_html, entry_text, json_feed, rfc3339
from tests.support.feeds import A, assert_atom, assert_json_feed, assert_safe_fragment, item, items

INFO = FeedInfo(title="Trending ML Papers", description="The papers that are trending.", author="Trending ML Papers",
                site_url="https://papers.example.org/", archive_url="https://papers.example.org/issues",
                feed_url="https://papers.example.org/feed.atom")
NOW = dt.datetime(2025, 3, 25, 12, 0, tzinfo=dt.UTC)
FRAGMENT_TAGS = {"p", "a", "h3", "em", "strong"}
HOSTILE_TITLE = 'Attention <script>alert("x")</script> ]]> & <img src=x onerror=alert(1)> \x00\x1b[2J\x0b\ufffe\uffff\u202e'
HOSTILE = item(
    1, HOSTILE_TITLE, url="javascript:alert(1)", abs_url="data:text/html,<script>alert(2)</script>",
    github_repo="https://github.com@evil.example/x", summary='"><iframe src="https://evil.example"></iframe>',
    authors=["<b>Mallory</b>", "Eve\r\nBcc: victim@example.org"], why="<style>body{display:none}</style>",
)


def entry(day: int, papers: list[dict], *, hour: int = 7) -> FeedEntry:
    return FeedEntry(url=f"https://papers.example.org/issues/2025-03-{day:02d}", title=f"Issue of {day} March",
                     published=dt.datetime(2025, 3, day + 1, hour, 0, 12, 345678, tzinfo=dt.UTC), items=papers)


ENTRIES = [entry(22, items(3, "Newest")), entry(21, items(2, "Middle")), entry(20, items(1, "Oldest"))]


def test_the_atom_feed_has_what_rfc_4287_requires_and_a_reader_accepts():
    body = atom_feed(INFO, ENTRIES, now=NOW)
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    parsed, root = assert_atom(body)
    assert root.findtext(A + "id") == INFO.feed_url
    assert root.findtext(A + "title") == "Trending ML Papers"
    assert root.findtext(A + "updated") == "2025-03-23T07:00:12Z"  # the newest entry, to the second, in UTC
    assert root.find(A + "author").findtext(A + "name") == "Trending ML Papers"
    links = {link.get("rel"): (link.get("href"), link.get("type")) for link in root.findall(A + "link")}
    assert links == {"self": (INFO.feed_url, "application/atom+xml"), "alternate": (INFO.archive_url, "text/html")}
    assert [e.id for e in parsed.entries] == [e.url for e in ENTRIES]  # in the order given: newest first
    assert [e.link for e in parsed.entries] == [e.url for e in ENTRIES]
    assert parsed.entries[0].title == "Issue of 22 March"
    assert parsed.entries[0].published == parsed.entries[0].updated == "2025-03-23T07:00:12Z"


def test_each_entry_holds_its_papers_with_link_why_and_summary():
    papers = [item(1, "Sparse Mixtures", why="335 upvotes in 5 hours", summary="It routes tokens."),
              item(2, "Dense Retrieval", url=None, why="", summary="")]
    html = entry_html(entry(21, papers))
    markup = assert_safe_fragment(html, allowed=FRAGMENT_TAGS)
    assert 'Read this issue on the site' in html and markup.hrefs[0] == "https://papers.example.org/issues/2025-03-21"
    assert '<h3>1. <a href="https://huggingface.co/papers/2503.10001">Sparse Mixtures</a></h3>' in html
    assert "<p><strong>Why it's trending:</strong> 335 upvotes in 5 hours</p>" in html
    assert "<p>It routes tokens.</p>" in html
    assert '<h3>2. Dense Retrieval</h3>' in html  # no safe URL: a title without a link
    assert html.index("Sparse Mixtures") < html.index("Dense Retrieval")
    assert '<a href="https://arxiv.org/abs/2503.10001">arXiv</a>' in html
    text = entry_text(entry(21, papers))
    assert "1. Sparse Mixtures\nhttps://huggingface.co/papers/2503.10001" in text
    assert "Why it's trending: 335 upvotes in 5 hours\nIt routes tokens." in text
    assert "<" not in text


def test_a_hostile_paper_cannot_inject_markup_into_the_atom_feed():
    body = atom_feed(INFO, [entry(21, [HOSTILE]), entry(20, items(1))], now=NOW)
    _, root = assert_atom(body)  # well-formed in spite of the controls and U+FFFE/U+FFFF
    content = root.find(A + "entry").find(A + "content")
    assert content is not None and len(content) == 0 and content.text
    html = content.text  # what a reader gets after XML unescaping: the HTML to render
    markup = assert_safe_fragment(html, allowed=FRAGMENT_TAGS)
    for bad in ("<script", "<img", "<iframe", "<style", "<b>", "javascript:", "data:"):
        assert bad not in html, bad
    assert not [href for href in markup.hrefs if "evil.example" in href]  # in the summary's text, never a link
    assert "&lt;script&gt;" in html and "&lt;b&gt;Mallory&lt;/b&gt;" in html  # shown as text, not dropped
    shown = unescape(html)
    assert "\x1b" not in shown and "\x00" not in shown and "\ufffe" not in shown and "\u202e" not in shown
    assert "Eve Bcc: victim@example.org" in shown  # one line: the CR LF became a space


def test_a_hostile_paper_cannot_inject_markup_into_the_json_feed():
    feed = assert_json_feed(json_feed(INFO, [entry(21, [HOSTILE])]))
    html = feed["items"][0]["content_html"]
    markup = assert_safe_fragment(html, allowed=FRAGMENT_TAGS)
    for bad in ("<script", "<img", "<iframe", "<style", "javascript:", "data:"):
        assert bad not in html, bad
    assert not [href for href in markup.hrefs if "evil.example" in href]
    text = feed["items"][0]["content_text"]
    for bad in ("javascript:", "\x1b", "\x00", "\u202e", "\ufffe", "\uffff"):
        assert bad not in text and bad not in unescape(html), repr(bad)
    assert '<script>alert("x")</script>' in text  # plain text is not HTML: shown as it was written, cleaned


def test_a_hostile_list_name_cannot_break_the_atom_document():
    info = replace(INFO, title="Papers </title><script>x</script>\x07", author="A & B <c>")
    _, root = assert_atom(atom_feed(info, ENTRIES, now=NOW))
    assert root.findtext(A + "title") == "Papers </title><script>x</script>"  # text, escaped as XML
    assert root.find(A + "author").findtext(A + "name") == "A & B <c>"
    assert json.loads(json_feed(info, []))["title"] == "Papers </title><script>x</script>"


def test_the_json_feed_has_what_version_1_1_requires():
    feed = assert_json_feed(json_feed(INFO, ENTRIES))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Trending ML Papers" and feed["feed_url"] == INFO.feed_url
    assert feed["home_page_url"] == INFO.archive_url
    assert feed["authors"] == [{"name": "Trending ML Papers", "url": "https://papers.example.org/"}]
    assert [i["id"] for i in feed["items"]] == [e.url for e in ENTRIES] == [i["url"] for i in feed["items"]]
    first = feed["items"][0]
    assert first["date_published"] == "2025-03-23T07:00:12Z"
    assert [t in first["content_html"] for t in ("Newest number 1", "Newest number 2", "Newest number 3")] == [True] * 3
    assert "Newest number 1" in first["content_text"] and "Why it's trending: 99 upvotes in 6 hours" in first["content_text"]


def test_an_empty_archive_gives_valid_feeds():
    parsed, root = assert_atom(atom_feed(INFO, [], now=NOW))
    assert parsed.entries == [] and root.findtext(A + "updated") == "2025-03-25T12:00:00Z"
    assert assert_json_feed(json_feed(INFO, []))["items"] == []


def test_an_issue_without_papers_is_still_an_entry():
    html = entry_html(entry(21, []))
    assert html.startswith("<p>0 papers.")
    assert_atom(atom_feed(INFO, [entry(21, [])], now=NOW))


@pytest.mark.parametrize(("when", "written"), [
    (dt.datetime(2025, 3, 22, 7, 0, 0, 999999, tzinfo=dt.UTC), "2025-03-22T07:00:00Z"),
    (dt.datetime(2025, 3, 22, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2, minutes=30))), "2025-03-22T07:00:00Z"),
    (dt.datetime(2025, 3, 22, 7, 0), "2025-03-22T07:00:00Z"),  # naive: stored times are UTC, never local
])
def test_dates_are_rfc_3339_in_utc(when, written):
    assert rfc3339(when) == written


def test_the_atom_document_declares_its_namespace_and_language():
    root = ET.fromstring(atom_feed(INFO, ENTRIES, now=NOW))
    assert root.tag == A + "feed" and root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
