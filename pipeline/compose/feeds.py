"""The archive as feeds: Atom (RFC 4287) and JSON Feed 1.1, one entry per issue, built from plain data.

Pure: the caller passes the feed's addresses, the issues (their frozen items)
and ``now``; nothing here reads the settings, the database or the clock. Every
paper string goes through :func:`pipeline.compose.cards.paper_view`, so it is
cleaned (no control characters, one line) and every href is an http(s) URL;
what remains is escaped once for HTML, and the Atom document is serialised by
ElementTree, which escapes it again as XML text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from pipeline.compose.cards import paper_view
from pipeline.text import clean_text

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"

# XML 1.0 §2.2 Char: clean_text already drops C0/C1 controls and lone surrogates, but U+FFFE and U+FFFF
# (and any stray control a caller did not clean) would still make the whole Atom document ill-formed.
# Both feeds drop them: they are no text in JSON either.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What describes the feed itself; every URL absolute."""

    title: str
    description: str
    author: str
    site_url: str  # the home page: the author's address
    archive_url: str  # the page the feed is the machine-readable form of (rel="alternate")
    feed_url: str  # this feed's own address (rel="self"); also the Atom feed's id


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One sent issue: its absolute URL (also its id), a title, when it went out, the papers it shows."""

    url: str
    title: str
    published: dt.datetime
    items: Sequence[Mapping[str, Any]]  # the frozen ranked items, ``issue.items[:issue.size]``


def rfc3339(when: dt.datetime) -> str:
    """``when`` in UTC to the second, as RFC 3339 §5.6 writes it (``2025-03-22T07:00:00Z``)."""
    if when.tzinfo is None:  # stored times are UTC; a naive one must not be read as local time
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _papers(entry: FeedEntry) -> list[dict[str, Any]]:
    return [paper_view(dict(item)) for item in entry.items]


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def entry_html(entry: FeedEntry) -> str:
    """The issue's papers as an HTML fragment: every text escaped, every href an http(s) URL."""
    papers = _papers(entry)
    url = escape(entry.url)
    parts = [f'<p>{_plural(len(papers), "paper")}. <a href="{url}">Read this issue on the site</a>.</p>']
    for p in papers:
        title = escape(p["title"])
        head = f'<a href="{escape(p["url"])}">{title}</a>' if p["url"] else title
        parts.append(f"<h3>{p['rank']}. {head}</h3>" if p["rank"] else f"<h3>{head}</h3>")
        if p["authors"]:
            parts.append(f"<p><em>{escape(p['authors'])}</em></p>")
        if p["why"]:
            parts.append(f"<p><strong>Why it's trending:</strong> {escape(p['why'])}</p>")
        if p["summary"]:
            parts.append(f"<p>{escape(p['summary'])}</p>")
        links = " · ".join(f'<a href="{escape(href)}">{escape(label)}</a>' for label, href in p["links"])
        if p["figures"] or links:
            parts.append(f"<p>{' · '.join(s for s in (escape(p['figures']), links) if s)}</p>")
    return _chars("\n".join(parts))


def entry_text(entry: FeedEntry) -> str:
    """The issue's papers as plain text, for readers that show no HTML."""
    papers = _papers(entry)
    blocks = [f"{_plural(len(papers), 'paper')}. Read this issue on the site: {entry.url}"]
    for p in papers:
        lines = [f"{p['rank']}. {p['title']}" if p["rank"] else p["title"]]
        lines += [value for value in (p["url"], p["authors"]) if value]
        if p["why"]:
            lines.append(f"Why it's trending: {p['why']}")
        if p["summary"]:
            lines.append(p["summary"])
        blocks.append("\n".join(lines))
    return _chars("\n\n".join(blocks))


def _updated(entries: Sequence[FeedEntry], now: dt.datetime) -> str:
    # An empty archive still needs a feed-level <updated> (RFC 4287 §4.1.1): the moment it was asked for.
    return rfc3339(max((e.published for e in entries), default=now))


def _chars(value: str) -> str:
    return _NOT_XML_CHAR.sub("", value)


def _line(value: str) -> str:
    return _chars(clean_text(value))


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _chars(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _chars(text)
    return element


def atom_feed(info: FeedInfo, entries: Sequence[FeedEntry], *, now: dt.datetime) -> bytes:
    """An Atom 1.0 document (RFC 4287), UTF-8, entries in the order given (newest first)."""
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "en"})
    _add(feed, "id", info.feed_url)  # §4.2.6: permanent and unique; the feed's own URL is both here
    _add(feed, "title", _line(info.title))
    _add(feed, "subtitle", _line(info.description))
    _add(feed, "updated", _updated(entries, now))
    author = _add(feed, "author")  # §4.1.1: a feed-level author covers every entry
    _add(author, "name", _line(info.author))
    _add(author, "uri", info.site_url)
    _add(feed, "link", rel="self", type=ATOM_TYPE, href=info.feed_url)
    _add(feed, "link", rel="alternate", type="text/html", href=info.archive_url)
    for e in entries:
        entry = _add(feed, "entry")
        _add(entry, "id", e.url)
        _add(entry, "title", _line(e.title))
        _add(entry, "link", rel="alternate", type="text/html", href=e.url)
        _add(entry, "published", rfc3339(e.published))
        _add(entry, "updated", rfc3339(e.published))  # a sent issue is frozen: it never changes after
        _add(entry, "content", entry_html(e), type="html")  # §3.1.1.2: HTML as escaped text, never raw markup
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def json_feed(info: FeedInfo, entries: Sequence[FeedEntry]) -> bytes:
    """A JSON Feed 1.1 document (https://jsonfeed.org/version/1.1), UTF-8, items in the order given."""
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": _line(info.title),
        "home_page_url": info.archive_url,
        "feed_url": info.feed_url,
        "description": _line(info.description),
        "language": "en",
        "authors": [{"name": _line(info.author), "url": info.site_url}],
        "items": [
            {
                "id": e.url,
                "url": e.url,
                "title": _line(e.title),
                "content_html": entry_html(e),
                "content_text": entry_text(e),
                "date_published": rfc3339(e.published),
            }
            for e in entries
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode() + b"\n"
