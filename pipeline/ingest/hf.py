"""Hugging Face daily papers: ``fetch_day`` talks to the API, ``parse_day`` is pure.

Also home of the field cleaners (text, arXiv ids, URLs, timestamps) that the
other sources reuse, so every source normalizes a paper the same way.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipeline.errors import DayNotAvailable, IngestError
from pipeline.ingest.http import get_with_retries
from pipeline.ingest.records import PaperIn, ParseResult, Skipped
from pipeline.text import clean_text

MAX_PAGES = 50  # 5,000 papers in a day is far beyond any real list: the API is ignoring ``p``
MAX_COUNT = 2**31 - 1  # PostgreSQL INTEGER: a larger count would fail the whole flush

# --- field cleaners ---------------------------------------------------------

_NEW_ID = re.compile(r"(\d{2})(\d{2})\.\d{4,5}", re.ASCII)  # 2503.16428 (April 2007 on)
_OLD_ID = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{2}(\d{2})\d{3}", re.ASCII)  # hep-th/9901001, math.GT/0309136
_VERSION = re.compile(r"v[1-9]\d{0,3}\Z", re.ASCII)


def normalize_arxiv_id(value: str) -> str | None:
    """The arXiv id without its version (``2503.16428v2`` -> ``2503.16428``), or None if invalid."""
    value = _VERSION.sub("", value.strip())
    new = _NEW_ID.fullmatch(value)
    if new and 1 <= int(new.group(2)) <= 12:
        return value
    old = _OLD_ID.fullmatch(value)
    if old and 1 <= int(old.group(1)) <= 12:
        return value
    return None


_GH_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_GH_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_GH_NOT_OWNERS = {"orgs", "sponsors", "topics", "features", "marketplace", "settings", "login", "search", "apps"}


def _plain_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > 2000 or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        return None
    return value


def github_repo_url(value: Any) -> str | None:
    """``https://github.com/owner/repo`` for a link into a GitHub repository, else None.

    Deeper links (``/tree/main/sub``) are reduced to the repository they point into.
    """
    url = _plain_url(value)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.hostname not in ("github.com", "www.github.com"):
        return None
    if parts.username or parts.password or port not in (None, 443):
        return None
    segments = parts.path.split("/")[1:3]
    if len(segments) < 2:
        return None
    owner, repo = segments[0], segments[1].removesuffix(".git")
    if not _GH_OWNER.fullmatch(owner) or owner.lower() in _GH_NOT_OWNERS:
        return None
    if not _GH_REPO.fullmatch(repo) or repo in (".", ".."):
        return None
    return f"https://github.com/{owner}/{repo}"


def web_url(value: Any) -> str | None:
    """The URL itself if it is http(s) with a host and no user info, else None."""
    url = _plain_url(value)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    # user@host URLs are a phishing staple: "https://github.com@evil.example/".
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    return url


def parse_timestamp(value: str) -> datetime | None:
    """An ISO 8601 timestamp with a zone (``Z`` or an offset) as aware UTC, else None."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(UTC)


# --- fetch ------------------------------------------------------------------


def _json_list(raw: bytes, what: str) -> list[Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise IngestError(f"{what} is not valid JSON ({' '.join(str(exc).split())})") from exc
    if not isinstance(data, list):
        raise IngestError(f"{what} is a JSON {type(data).__name__}, not the expected list of papers")
    return data


def fetch_day(
    client: httpx.Client,
    *,
    api_url: str,
    day: date,
    retries: int,
    page_size: int = 100,
    sleep: Callable[[float], None] = time.sleep,
) -> list[bytes]:
    """The raw pages of Hugging Face's daily papers list for ``day``.

    Pages ``p=0, 1, ...`` until one holds fewer than ``page_size`` items. Raises
    ``DayNotAvailable`` when the API has no list for ``day`` (HTTP 400/404) and
    ``IngestError`` for any other failure or a body that is not a JSON list.
    """
    if not 1 <= page_size <= 100:
        raise IngestError("page_size must be between 1 and 100 (the API's limit)")
    url = f"{api_url.rstrip('/')}/daily_papers"
    pages: list[bytes] = []
    for page in range(MAX_PAGES):
        params = {"date": day.isoformat(), "limit": page_size, "p": page}
        response = get_with_retries(client, url, params=params, retries=retries, sleep=sleep)
        if response.status_code in (400, 404) and page == 0:
            # The API answers 400 for a date whose list is not open yet.
            raise DayNotAvailable(f"Hugging Face has no daily papers list for {day.isoformat()} yet")
        if response.status_code != 200:
            raise IngestError(f"Hugging Face answered HTTP {response.status_code} for {response.request.url}")
        items = _json_list(response.content, f"Hugging Face page {page} for {day.isoformat()}")
        if pages and response.content == pages[-1]:
            return pages  # the same page again: the server ignores ``p``; we already have it
        pages.append(response.content)
        if len(items) < page_size:
            return pages
    raise IngestError(f"Hugging Face returned more than {MAX_PAGES} full pages for {day.isoformat()}")


# --- parse ------------------------------------------------------------------


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Withdrawn(_Reject):
    """A withdrawn paper: not ingested, and one already stored is never featured again."""

    def __init__(self, arxiv_id: str, at: datetime | None) -> None:
        super().__init__("withdrawn")
        self.arxiv_id, self.at = arxiv_id, at


def _count(value: Any, name: str) -> int:
    # bool is an int subclass: ``true`` upvotes is not a count.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _Reject(f"{name} is not a non-negative integer")
    return value


def _when(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    when = parse_timestamp(value) if isinstance(value, str) else None
    if when is None:
        raise _Reject(f"{name} is not an ISO 8601 timestamp with a time zone")
    return when


def _authors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Reject("authors is not a list")
    names = []
    for author in value:
        if not isinstance(author, dict) or author.get("hidden") is True:
            continue
        name = author.get("name")
        if isinstance(name, str) and (name := clean_text(name)):
            names.append(name)
    return tuple(names)


def _keywords(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    words = (clean_text(v) for v in value if isinstance(v, str))
    return tuple(dict.fromkeys(w for w in words if w))  # dedup, keep order


ORGANIZATION_LIMIT = 200


def _organization(value: Any) -> str | None:
    """The organization's full name (else its short name), or None; a malformed one is just absent."""
    if not isinstance(value, dict):
        return None
    for key in ("fullname", "name"):
        name = value.get(key)
        if isinstance(name, str) and (name := clean_text(name)):
            return name[:ORGANIZATION_LIMIT]
    return None


def https_url(value: Any) -> str | None:
    """``web_url`` for https only: what a mail may load without mixed content."""
    url = web_url(value)
    return url if url is not None and urlsplit(url).scheme == "https" else None


def _paper(item: Any, *, day: date, source: str) -> PaperIn:
    """One list item as a PaperIn; raises _Reject with the reason otherwise."""
    if not isinstance(item, dict):
        raise _Reject("not an object")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise _Reject("missing paper object")
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise _Reject("missing id")
    arxiv_id = normalize_arxiv_id(raw_id)
    if arxiv_id is None:
        raise _Reject("invalid arXiv id")
    if withdrawn := paper.get("withdrawnAt"):
        raise _Withdrawn(arxiv_id, parse_timestamp(withdrawn) if isinstance(withdrawn, str) else None)
    title = paper.get("title")
    if not isinstance(title, str):
        raise _Reject("missing title")
    if not (title := clean_text(title)):
        raise _Reject("empty title")
    abstract = paper.get("summary")
    if not isinstance(abstract, str):
        raise _Reject("missing summary")
    stars = paper.get("githubStars")
    summary = paper.get("ai_summary")
    return PaperIn(
        arxiv_id=arxiv_id,
        title=title,
        abstract=clean_text(abstract),
        authors=_authors(paper.get("authors")),
        listed_on=day,
        source=source,
        published_at=_when(paper.get("publishedAt"), "publishedAt"),
        submitted_at=_when(paper.get("submittedOnDailyAt"), "submittedOnDailyAt"),
        summary=(clean_text(summary) or None) if isinstance(summary, str) else None,
        keywords=_keywords(paper.get("ai_keywords")),
        github_repo=github_repo_url(paper.get("githubRepo")),
        project_page=web_url(paper.get("projectPage")),
        organization=_organization(paper.get("organization")),
        thumbnail_url=https_url(item.get("thumbnail")),
        upvotes=_count(paper.get("upvotes", 0), "upvotes"),
        comments=_count(item.get("numComments", 0), "numComments"),
        github_stars=None if stars is None else _count(stars, "githubStars"),
    )


def _ref(item: Any, index: int) -> str:
    """The record's id for messages when it has a usable one, else its position."""
    paper = item.get("paper") if isinstance(item, dict) else None
    raw = paper.get("id") if isinstance(paper, dict) else None
    text = clean_text(raw)[:60] if isinstance(raw, str) else ""
    return text or f"#{index}"


def parse_day(pages: list[bytes] | bytes, *, day: date, source: str = "hf") -> ParseResult:
    """Validate the items of one day's list (one or several raw pages).

    A malformed item is skipped with its reason and the rest go in; a repeated id
    keeps its first occurrence. A page that is not a JSON list raises ``IngestError``.
    """
    if isinstance(pages, (bytes, bytearray)):
        pages = [bytes(pages)]
    result = ParseResult()
    index = 0
    for number, raw in enumerate(pages):
        for item in _json_list(raw, f"page {number} of the {day.isoformat()} list"):
            ref = _ref(item, index)
            index += 1
            try:
                paper = _paper(item, day=day, source=source)
            except _Reject as rejected:
                result.skipped.append(Skipped(ref=ref, reason=rejected.reason))
                if isinstance(rejected, _Withdrawn):
                    result.withdrawn.setdefault(rejected.arxiv_id, rejected.at)
                continue
            result.add(paper, ref=ref)
    return result
