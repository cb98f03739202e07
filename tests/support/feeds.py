"""For the archive's tests: frozen items and sent issues made to order, and checks of what a feed must hold.

The checks read the documents as a feed reader would (feedparser, which must not
call them malformed) and then against the specs' own words: RFC 4287 for Atom,
https://jsonfeed.org/version/1.1 for JSON Feed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser
from sqlmodel import Session

from pipeline import service
from pipeline.models import Edition, Issue
from pipeline.settings import Settings

A = "{http://www.w3.org/2005/Atom}"
# RFC 3339 §5.6 date-time; "Z" or a numeric offset.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
MAIL_ONLY = "MAIL-ONLY-MARKER"  # in a stored issue's HTML and text: no page may show what only the mail holds
MAIL_HTML = (f"<html><body><p>{MAIL_ONLY}</p><p>You get this email because you subscribed. "
             '<a href="https://papers.example.org/u/TOKEN">Unsubscribe</a> · '
             '<a href="https://papers.example.org/p/TOKEN">Preferences</a></p></body></html>')


def item(rank: int, title: str | None = None, **fields: Any) -> dict[str, Any]:
    """One ranked paper as ``digest_item`` freezes it."""
    arxiv_id = f"2503.{10000 + rank}"
    frozen: dict[str, Any] = {
        "rank": rank, "arxiv_id": arxiv_id, "title": title or f"Paper number {rank}",
        "authors": ["Ada Lovelace", "Alan Turing"], "summary": f"What paper {rank} found, in two sentences. It works.",
        "url": f"https://huggingface.co/papers/{arxiv_id}", "abs_url": f"https://arxiv.org/abs/{arxiv_id}",
        "github_repo": f"https://github.com/example/paper-{rank}", "project_page": None,
        "listed_on": "2025-03-21", "published_on": "2025-03-20", "upvotes": 100 - rank, "comments": 3,
        "github_stars": 40, "score": 1.0 / rank, "why": f"{100 - rank} upvotes in 6 hours", "parts": {},
    }
    frozen.update(fields)
    return frozen


def items(count: int, prefix: str = "Paper") -> list[dict[str, Any]]:
    return [item(rank, f"{prefix} number {rank}") for rank in range(1, count + 1)]


def store_issue(cfg: Settings, day: dt.date, edition: Edition = Edition.daily, *,
                papers: list[dict[str, Any]] | None = None, size: int | None = None,
                sent_at: dt.datetime | None = None) -> None:
    """An issue stored directly, as if built (and, with ``sent_at``, as if its sending had started then)."""
    frozen = items(5, f"{edition.value} {day}") if papers is None else papers
    with Session(service.engine(cfg)) as session:
        session.add(Issue(date=day, edition=edition, as_of=dt.datetime.combine(day, dt.time(7), tzinfo=dt.UTC),
                          size=len(frozen) if size is None else size, items=frozen, subject=f"Issue of {day}",
                          html=MAIL_HTML, text=MAIL_ONLY, send_started_at=sent_at))
        session.commit()


class Markup(HTMLParser):
    """The tags, attributes and hrefs of an HTML document or fragment."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.hrefs: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]


def assert_safe_fragment(html: str, *, allowed: set[str]) -> Markup:
    """``html`` holds only ``allowed`` tags, no event handler or style attribute, and only http(s) links."""
    markup = Markup(html)
    assert set(markup.tags) <= allowed, set(markup.tags) - allowed
    assert not [name for name, _ in markup.attributes if name.startswith("on") or name == "style"]
    assert all(urlsplit(href).scheme in ("http", "https") for href in markup.hrefs), markup.hrefs
    return markup


def _one(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.findall(A + tag)
    assert len(found) == 1, f"exactly one atom:{tag} in {parent.tag} (RFC 4287 §4.1), found {len(found)}"
    return found[0]


def _absolute(iri: str | None) -> str:
    assert iri and urlsplit(iri).scheme in ("http", "https") and urlsplit(iri).netloc, iri
    return iri


def assert_atom(body: bytes) -> tuple[feedparser.FeedParserDict, ET.Element]:
    """``body`` is a well-formed Atom 1.0 feed that a reader accepts, with what RFC 4287 requires."""
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    root = ET.fromstring(body)  # well-formed XML, or this raises
    assert root.tag == A + "feed"
    _absolute(_one(root, "id").text)
    assert _one(root, "title").text
    assert RFC3339.fullmatch(_one(root, "updated").text or "")
    authors = root.findall(A + "author")  # §4.1.1: required at feed level when an entry has none of its own
    assert authors and all((a.findtext(A + "name") or "").strip() for a in authors)
    rels = {link.get("rel", "alternate"): link.get("href") for link in root.findall(A + "link")}
    _absolute(rels.get("self"))
    _absolute(rels.get("alternate"))
    for entry in root.findall(A + "entry"):
        _absolute(_one(entry, "id").text)
        assert _one(entry, "title").text
        assert RFC3339.fullmatch(_one(entry, "updated").text or "")
        assert RFC3339.fullmatch(_one(entry, "published").text or "")
        alternates = [link for link in entry.findall(A + "link") if link.get("rel", "alternate") == "alternate"]
        assert len(alternates) == 1 and _absolute(alternates[0].get("href"))
        content = _one(entry, "content")
        assert content.get("type") == "html" and len(content) == 0  # escaped text, no child elements
    return parsed, root


def assert_json_feed(body: bytes) -> dict[str, Any]:
    """``body`` is UTF-8 JSON holding a JSON Feed 1.1 document, with the spec's required fields and types."""
    feed = json.loads(body.decode("utf-8"))
    assert isinstance(feed, dict)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"  # required
    assert isinstance(feed["title"], str) and feed["title"]  # required
    for key in ("home_page_url", "feed_url"):  # optional, but strongly recommended: we give both, absolute
        _absolute(feed[key])
    for key in ("description", "language"):
        assert isinstance(feed.get(key, ""), str)
    authors = feed.get("authors", [])
    assert isinstance(authors, list)
    for author in authors:  # "must include at least one" of name, url, avatar
        assert isinstance(author, dict) and {"name", "url", "avatar"} & author.keys()
    assert isinstance(feed["items"], list)  # required, may be empty
    ids = []
    for entry in feed["items"]:
        assert isinstance(entry, dict)
        assert isinstance(entry["id"], str) and entry["id"]  # required; a string, even if it looks like a number
        ids.append(entry["id"])
        assert isinstance(entry.get("content_html"), str) or isinstance(entry.get("content_text"), str)
        for key in ("url", "title", "content_html", "content_text", "summary"):
            assert isinstance(entry.get(key, ""), str), key
        for key in ("date_published", "date_modified"):
            if key in entry:
                assert RFC3339.fullmatch(entry[key]), entry[key]
    assert len(ids) == len(set(ids))  # an id is unique within the feed
    return feed
