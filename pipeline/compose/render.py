"""Render one issue of the digest: MJML + Jinja for the HTML part, Jinja for the text part.

An issue is rendered once, never per subscriber. Where a subscriber's own links
go, the output carries the markers from :mod:`pipeline.compose.slots`; dispatch
substitutes them as bytes. Every string in an item came from the internet, so:
autoescape is on for the HTML templates, control characters are stripped from
everything, and every href passes :func:`safe_url`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from mjml import mjml2html
from premailer import Premailer

from pipeline.compose import slots
from pipeline.compose.snippets import snippet
from pipeline.errors import RenderError
from pipeline.text import clean_text

SUBJECT_LIMIT = 150
TITLE_LIMIT = 200
log = logging.getLogger(__name__)

SUMMARY_LIMIT = 280  # about three lines at 640 px
SHORT_SUMMARY_LIMIT = 140  # when the whole digest would be too long
HTML_LIMIT = 90_000  # bytes of HTML: Gmail clips a message past about 102 KB, and what it cuts is the footer
SLOT_ALLOWANCE = 2_000  # the subscriber's own links are longer than their placeholders
WHY_LIMIT = 160
OLDER_PAPER_DAYS = 60  # on arXiv this much longer before it was listed: marked "older paper"
MAX_AUTHORS = 3
TEXT_WIDTH = 78

# Cc controls, plus the bidi overrides/isolates that can make text read backwards.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class DigestContext:
    """What an issue needs besides its items; the same for every subscriber."""

    list_name: str
    issue_date: dt.date
    archive_url: str
    site_url: str
    list_address: str
    weekly: bool = False  # the week's top papers rather than the day's


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    html: str
    text: str


def templates_path() -> Path:
    """The templates folder: ``pipeline/templates`` in an installed wheel, else ``<repo>/templates``."""
    package = Path(__file__).resolve().parent.parent  # pipeline/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


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


def header_safe(value: str, limit: int) -> str:
    """Make ``value`` fit a mail header: no CR/LF or controls, one line, at most ``limit`` chars."""
    return truncate(clean_text(value), limit)


def short_authors(authors: Any) -> str:
    """Names joined by commas; more than three become "A, B, C et al."."""
    if isinstance(authors, str):
        authors = [authors]
    names = [n for n in (clean_text(a) for a in authors or ()) if n]
    shown = ", ".join(names[:MAX_AUTHORS])
    return f"{shown} et al." if len(names) > MAX_AUTHORS else shown


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _paper(item: dict[str, Any]) -> dict[str, Any]:
    """The view of one ranked item that both templates read; every field already cleaned."""
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
    return {
        "rank": _count(item.get("rank")),
        "listed": f"{listed:%-d %b %Y}" if listed else "",
        "published": f"{published:%-d %b %Y}" if published and published != listed else "",
        # A paper that reached the list long after it appeared on arXiv is trending again, not new.
        "older": bool(listed and published and (listed - published).days > OLDER_PAPER_DAYS),
        "title": truncate(clean_text(item.get("title")), TITLE_LIMIT) or "Untitled",
        "url": safe_url(item.get("url")),
        "authors": short_authors(item.get("authors")),
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


def _wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """textwrap for the text part; URLs and long words are never split."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@functools.lru_cache(maxsize=4)
def _environments(folder: Path) -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.FileSystemLoader(str(folder))
    # Autoescape is off by default and select_autoescape() does not know .mjml: force it on.
    html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    # The text part is not HTML; escaping would print "&amp;". Inputs are cleaned instead.
    text = jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for env in (html, text):
        env.filters["safe_url"] = safe_url
        env.filters["wrap"] = _wrap
    return html, text


def _inline_css(html: str) -> str:
    """Inline the <mj-style> rules; never fetch anything (premailer would, by default)."""
    # premailer keeps the doctype only if it matches lxml's spelling byte for byte;
    # without one, clients render in quirks mode.
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    return Premailer(
        html,
        allow_network=False,
        disable_link_rewrites=True,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        exclude_pseudoclasses=True,
        keep_style_tags=False,
        strip_important=False,
    ).transform(pretty_print=False)


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def render_digest(
    items: list[dict[str, Any]], *, ctx: DigestContext, templates_dir: Path | None = None
) -> RenderedIssue:
    """Render the issue once: subject, inlined HTML and plain text, with subscriber slots intact.

    Raises RenderError if a template or MJML fails, or if a placeholder from
    ``slots.BODY_SLOTS`` did not survive into the HTML or text.
    """
    papers = [_paper(item) for item in items]
    date_long = f"{'The week to ' if ctx.weekly else ''}{ctx.issue_date:%A, %-d %B %Y}"
    headline = papers[0]["title"] if papers else "no trending papers today"
    when = f"{'week to ' if ctx.weekly else ''}{ctx.issue_date:%-d %b %Y}"
    subject = header_safe(f"{ctx.list_name} — {when}: {headline}", SUBJECT_LIMIT)
    site_url = safe_url(ctx.site_url)
    values = {
        "subject": subject,
        "list_name": clean_text(ctx.list_name),
        "date_long": date_long,
        "archive_url": safe_url(ctx.archive_url),
        "site_url": site_url,
        "site_host": urlsplit(site_url).hostname if site_url else "",
        "list_address": clean_text(ctx.list_address),
        "unsubscribe_url": slots.UNSUBSCRIBE_URL,
        "preferences_url": slots.PREFERENCES_URL,
    }
    envs = _environments((templates_dir or templates_path()).resolve())
    rendered = _render_digest(envs, values, papers)
    if _fits(rendered):
        return rendered
    # Too long to arrive whole: shorter snippets, then none, from the lowest-ranked paper up. The papers,
    # their links and the footer always stay.
    papers = [{**p, "summary": snippet(p["summary"], SHORT_SUMMARY_LIMIT)} for p in papers]
    rendered = _render_digest(envs, values, papers)
    if _fits(rendered):
        return rendered
    best, low, high = None, 0, len(papers) - 1  # how many papers keep a snippet: the most that fits, by halving
    while low <= high:
        keep = (low + high) // 2
        candidate = _render_digest(envs, values, [p if i < keep else {**p, "summary": ""}
                                                  for i, p in enumerate(papers)])
        fits = _fits(candidate)
        if fits or keep == 0:
            best = candidate
        low, high = (keep + 1, high) if fits else (low, keep - 1)
    best = best or rendered
    if not _fits(best):
        log.warning("the %s digest's HTML is %d bytes even without snippets", ctx.issue_date, len(best.html))
    return best


def _fits(rendered: RenderedIssue) -> bool:
    return len(rendered.html.encode()) + SLOT_ALLOWANCE <= HTML_LIMIT


def _render_digest(envs: tuple[jinja2.Environment, jinja2.Environment], values: dict[str, Any],
                   papers: list[dict[str, Any]]) -> RenderedIssue:
    html_env, text_env = envs
    values = {**values, "papers": papers}
    try:
        mjml = html_env.get_template("digest.mjml").render(values)
        text = text_env.get_template("digest.txt").render(values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"digest template failed: {_one_line(exc)}") from exc
    try:
        html = mjml2html(mjml, disable_comments=True, fonts={})
    except ValueError as exc:  # mrml's parse errors; keep them to one line
        raise RenderError(f"MJML failed: {_one_line(exc)}") from exc
    html = _inline_css(html)
    for slot in slots.BODY_SLOTS:
        for part, body in (("HTML", html), ("text", text)):
            if slot not in body:
                raise RenderError(f"placeholder {slot!r} missing from the {part} part")
    return RenderedIssue(subject=values["subject"], html=html, text=text)


def render_confirmation(*, list_name: str, confirm_url: str, list_address: str, expiry_days: int,
                        templates_dir: Path | None = None) -> RenderedIssue:
    """The double opt-in mail: same look as the digest, one button, a text part."""
    url = safe_url(confirm_url)
    if url is None:
        raise RenderError("the confirmation link is not an http(s) URL; check BASE_URL")
    subject = header_safe(f"Confirm your subscription to {list_name}", SUBJECT_LIMIT)
    values = {"subject": subject, "list_name": clean_text(list_name), "confirm_url": url,
              "list_address": clean_text(list_address), "expiry_days": expiry_days}
    html_env, text_env = _environments((templates_dir or templates_path()).resolve())
    try:
        mjml = html_env.get_template("confirm.mjml").render(values)
        text = text_env.get_template("confirm.txt").render(values)
        html = _inline_css(mjml2html(mjml, disable_comments=True, fonts={}))
    except (jinja2.TemplateError, ValueError) as exc:
        raise RenderError(f"confirmation template failed: {_one_line(exc)}") from exc
    return RenderedIssue(subject=subject, html=html, text=text)
