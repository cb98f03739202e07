"""arXiv Atom API: ``fetch_*`` talk to the API, ``parse_feed``/``parse_feeds`` are pure.

arXiv has no engagement figures: its papers come in with zero upvotes and
comments and rank on recency and on what other sources say about them.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import date, timedelta

import httpx

from pipeline.errors import ConfigError, IngestError
from pipeline.ingest.hf import github_repo_url, normalize_arxiv_id, parse_timestamp
from pipeline.ingest.http import get_with_retries
from pipeline.ingest.records import PaperIn, ParseResult, Skipped
from pipeline.text import clean_text

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
}
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?", re.ASCII)  # cs.LG, hep-th, q-bio.NC
_ABS_URL = re.compile(r"https?://(?:www\.)?arxiv\.org/abs/(.+)", re.ASCII)
_ERROR_ID = "http://arxiv.org/api/errors"
_GITHUB_IN_TEXT = re.compile(r"https://(?:www\.)?github\.com/[^\s<>()\[\]{}\"',;]+")


def _check_category(category: str) -> None:
    # The category goes into a search query: "cs.LG OR all:x" would widen it.
    if not _CATEGORY.fullmatch(category):
        raise ConfigError(f"not an arXiv category: {category!r} (expected something like cs.LG)")


def fetch_category(
    client: httpx.Client,
    *,
    api_url: str,
    category: str,
    max_results: int = 100,
    retries: int,
    day: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """The raw Atom feed of the newest submissions in ``category``.

    With ``day``, the query is narrowed to submissions of ``day`` and the day before
    (what ``parse_feed`` keeps), so an older day can be fetched too.
    """
    _check_category(category)
    if not 1 <= max_results <= 2000:
        raise IngestError("max_results must be between 1 and 2000 (arXiv's limit per request)")
    query = f"cat:{category}"
    if day is not None:
        query += f" AND submittedDate:[{day - timedelta(days=1):%Y%m%d}0000 TO {day:%Y%m%d}2359]"
    params = {
        "search_query": query,
        "sortBy": "submittedDate",
        "sortOrder": "descending",
        "start": 0,
        "max_results": max_results,
    }
    response = get_with_retries(client, api_url, params=params, retries=retries, sleep=sleep)
    if response.status_code != 200:
        raise IngestError(f"arXiv answered HTTP {response.status_code} for {category} ({response.request.url})")
    return response.content


def fetch_categories(
    client: httpx.Client,
    *,
    api_url: str,
    categories: Iterable[str],
    day: date,
    retries: int,
    pause: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[bytes]:
    """One feed per category, ``pause`` seconds apart (arXiv asks for one request per 3 s)."""
    feeds: list[bytes] = []
    for number, category in enumerate(dict.fromkeys(categories)):
        if number:
            sleep(pause)
        feeds.append(
            fetch_category(client, api_url=api_url, category=category, retries=retries, day=day, sleep=sleep)
        )
    return feeds


def _root(raw: bytes) -> ET.Element:
    # arXiv never sends a DTD; refusing one rules out entity-expansion tricks.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise IngestError("the arXiv feed declares a DTD; refusing to parse it")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise IngestError(f"the arXiv feed is not valid XML ({exc})") from exc
    if root.tag != f"{{{NS['atom']}}}feed":
        raise IngestError(f"the arXiv answer is not an Atom feed (root element {root.tag!r})")
    return root


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _text(entry: ET.Element, path: str) -> str | None:
    node = entry.find(path, NS)
    return None if node is None else "".join(node.itertext())


def _github_link(*texts: str | None) -> str | None:
    for text in texts:
        for match in _GITHUB_IN_TEXT.finditer(text or ""):
            if repo := github_repo_url(match.group(0).rstrip(".:")):
                return repo
    return None


def _entry(entry: ET.Element, arxiv_id: str, *, day: date) -> PaperIn | None:
    """One entry as a PaperIn, None when outside the day's window; _Reject when malformed."""
    published_text = _text(entry, "atom:published")
    if published_text is None:
        raise _Reject("missing published")
    published = parse_timestamp(published_text)
    if published is None:
        raise _Reject("published is not an ISO 8601 timestamp with a time zone")
    # Each announcement carries the previous day's submissions.
    if published.date() not in (day, day - timedelta(days=1)):
        return None
    title = _text(entry, "atom:title")
    if title is None:
        raise _Reject("missing title")
    if not (title := clean_text(title)):
        raise _Reject("empty title")
    abstract = _text(entry, "atom:summary")
    if abstract is None:
        raise _Reject("missing summary")
    authors = (clean_text(name.text or "") for name in entry.iterfind("atom:author/atom:name", NS))
    comment = _text(entry, "arxiv:comment")
    primary = entry.find("arxiv:primary_category", NS)
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.iterfind("atom:category", NS)]
    categories = tuple(dict.fromkeys(t for t in (clean_text(term) for term in terms) if _CATEGORY.fullmatch(t)))
    return PaperIn(
        arxiv_id=arxiv_id,
        title=title,
        abstract=clean_text(abstract),
        authors=tuple(a for a in authors if a),
        listed_on=day,
        source="arxiv",
        published_at=published,
        github_repo=_github_link(comment, abstract),
        categories=categories,
    )


def _arxiv_id(text: str) -> str:
    """``http://arxiv.org/abs/2503.16428v1`` -> ``2503.16428``; raises _Reject otherwise."""
    if not text:
        raise _Reject("missing id")
    match = _ABS_URL.fullmatch(text)
    arxiv_id = normalize_arxiv_id(match.group(1)) if match else None
    if arxiv_id is None:
        raise _Reject("invalid arXiv id")
    return arxiv_id


def parse_feed(raw: bytes, *, day: date) -> ParseResult:
    """Papers of one arXiv Atom feed first submitted (UTC) on ``day`` or the day before.

    Malformed entries are skipped with their reason; a document that is not an Atom
    feed, or arXiv's error feed, raises ``IngestError``.
    """
    root = _root(raw)
    result = ParseResult()
    for index, entry in enumerate(root.iterfind("atom:entry", NS)):
        raw_id = clean_text(_text(entry, "atom:id") or "")
        if raw_id.startswith(_ERROR_ID):
            raise IngestError(f"arXiv API error: {clean_text(_text(entry, 'atom:summary') or raw_id)[:300]}")
        ref = raw_id[:80] or f"#{index}"
        try:
            arxiv_id = ref = _arxiv_id(raw_id)
            paper = _entry(entry, arxiv_id, day=day)
        except _Reject as rejected:
            result.skipped.append(Skipped(ref=ref, reason=rejected.reason))
            continue
        if paper is not None:
            result.add(paper, ref=ref)
    return result


def parse_feeds(raws: Iterable[bytes], *, day: date) -> ParseResult:
    """``parse_feed`` over several category feeds, merged; a paper cross-listed in
    several categories is kept once, silently (that is not an error)."""
    merged = ParseResult()
    for raw in raws:
        result = parse_feed(raw, day=day)
        merged.skipped.extend(result.skipped)
        for paper in result.papers:
            merged.add(paper, ref=paper.arxiv_id, repeats_are_errors=False)
    return merged
