"""What one paper's card shows, from its frozen item: the view both the mail and the site render.

Every string in an item came from the internet: control characters are stripped,
long fields are cut on word boundaries, and every href passes :func:`safe_url`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from pipeline.compose.links import image_path
from pipeline.compose.snippets import snippet
from pipeline.text import clean_text

TITLE_LIMIT = 200
SUMMARY_LIMIT = 280  # about three lines at 640 px
WHY_LIMIT = 160
OLDER_PAPER_DAYS = 60  # on arXiv this much longer before it was listed: marked "older paper"
MAX_AUTHORS = 3
ORGANIZATION_LIMIT = 80
CARD_IMAGE_WIDTH = 572  # the card's inner width in the 640 px mail; phones scale it down
IMAGE_ALT_LIMIT = 100
_DIGEST = re.compile(r"[0-9a-f]{64}", re.ASCII)
_ARXIV_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/]{0,39}", re.ASCII)  # 2503.16428, hep-th/9901001: safe in a URL

# Cc controls, plus the bidi overrides/isolates that can make text read backwards.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_url(value: Any) -> str | None:
    """Return ``value`` if it is an absolute http(s) URL with a host, else None.

    ``javascript:`` and ``data:`` survive HTML escaping, and relative links mean
    nothing in a mail client, so only http(s) gets through. URLs carrying
    whitespace, control characters or credentials (``https://hf.co@evil``) are refused.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > 2048 or any(c.isspace() for c in url) or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        credentials = parts.username is not None or parts.password is not None
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or credentials:
        return None
    return url


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters on a word boundary, ending with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    head, sep, _ = cut.rpartition(" ")
    if sep and len(head) >= limit // 2:
        cut = head
    return cut.rstrip(" ,;:.-–—(") + "…"


def short_authors(authors: Any) -> str:
    """Names joined by commas; more than three become "A, B, C et al."."""
    if isinstance(authors, str):
        authors = [authors]
    names = [n for n in (clean_text(a) for a in authors or ()) if n]
    shown = ", ".join(names[:MAX_AUTHORS])
    return f"{shown} et al." if len(names) > MAX_AUTHORS else shown


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _image(item: dict[str, Any], *, images: str, site_url: str, title: str) -> dict[str, Any] | None:
    """The card's thumbnail: where it is loaded from, its size on the card, its alt text; None for none."""
    stored = item.get("thumbnail")
    if images == "off" or not isinstance(stored, dict):
        return None
    width, height = _count(stored.get("width")), _count(stored.get("height"))
    if not width or not height:
        return None
    if images == "remote":
        src = safe_url(stored.get("url"))
        if src is None or not src.startswith("https://"):
            return None
    else:
        digest = stored.get("digest")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            return None
        src = f"{site_url.rstrip('/')}{image_path(digest)}"
    shown = min(CARD_IMAGE_WIDTH, width)
    return {"src": src, "width": shown, "height": max(1, round(height * shown / width)),
            "alt": f"Thumbnail: {truncate(title, IMAGE_ALT_LIMIT)}"}


def paper_view(item: dict[str, Any], *, images: str = "off", site_url: str = "") -> dict[str, Any]:
    """The view of one ranked item that both the mail and the site read; every field already cleaned.

    ``images`` is the IMAGES setting: "proxied" loads the thumbnail from our own copy at
    ``site_url`` (an empty ``site_url`` gives a path, for the site), "remote" from the
    source, "off" not at all.
    """
    links = [
        (label, url)
        for label, url in (
            ("arXiv", safe_url(item.get("abs_url"))),
            ("Code", safe_url(item.get("github_repo"))),
            ("Project", safe_url(item.get("project_page"))),
        )
        if url
    ]
    upvotes, comments, stars = (
        _count(item.get(key)) for key in ("upvotes", "comments", "github_stars")
    )
    # In words: an icon says nothing to a screen reader, and 💬 is an empty box without an emoji font.
    figures = [
        f"{n:,} {noun}{'' if n == 1 else 's'}"
        for n, noun in ((upvotes, "upvote"), (comments, "comment"), (stars, "star"))
        if n is not None
    ]
    listed, published = _day(item.get("listed_on")), _day(item.get("published_on"))
    title = truncate(clean_text(item.get("title")), TITLE_LIMIT) or "Untitled"
    arxiv_id = item.get("arxiv_id")
    return {
        "arxiv_id": arxiv_id if isinstance(arxiv_id, str) and _ARXIV_ID.fullmatch(arxiv_id) else None,
        "feedback": True,  # "more / less like this" links, when the card has an id (the mail only)
        "rank": _count(item.get("rank")),
        "listed": f"{listed:%-d %b %Y}" if listed else "",
        "published": f"{published:%-d %b %Y}" if published and published != listed else "",
        # A paper that reached the list long after it appeared on arXiv is trending again, not new.
        "older": bool(listed and published and (listed - published).days > OLDER_PAPER_DAYS),
        "title": title,
        "url": safe_url(item.get("url")),
        "authors": short_authors(item.get("authors")),
        "organization": truncate(clean_text(item.get("organization")), ORGANIZATION_LIMIT),
        "image": _image(item, images=images, site_url=site_url, title=title),
        "summary": snippet(clean_text(item.get("summary")), SUMMARY_LIMIT),
        "upvotes": upvotes,
        "comments": comments,
        "stars": stars,
        "figures": " · ".join(figures),
        "links": links,
        "why": truncate(clean_text(item.get("why")), WHY_LIMIT),
    }


def _day(value: object) -> dt.date | None:
    """An ISO date from a frozen item, or None for a missing or malformed one."""
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
