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
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from mjml import mjml2html
from premailer import Premailer

from pipeline.compose import slots
from pipeline.compose.cards import paper_view, safe_url, truncate
from pipeline.compose.snippets import snippet
from pipeline.errors import RenderError
from pipeline.text import clean_text

SUBJECT_LIMIT = 150
log = logging.getLogger(__name__)

SHORT_SUMMARY_LIMIT = 140  # when the whole digest would be too long
HTML_LIMIT = 90_000  # bytes of HTML: Gmail clips a message past about 102 KB, and what it cuts is the footer
TOKEN_ALLOWANCE = 100  # characters of a signed link token (about 75), with room to spare
TEXT_WIDTH = 78


@dataclass(frozen=True)
class DigestContext:
    """What an issue needs besides its items; the same for every subscriber."""

    list_name: str
    issue_date: dt.date
    archive_url: str
    site_url: str
    list_address: str
    weekly: bool = False  # the week's top papers rather than the day's
    images: str = "off"  # the IMAGES setting: proxied, remote or off


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


def header_safe(value: str, limit: int) -> str:
    """Make ``value`` fit a mail header: no CR/LF or controls, one line, at most ``limit`` chars."""
    return truncate(clean_text(value), limit)


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
        # MJML writes the width attributes Outlook needs; copied from CSS they would turn a thumbnail's
        # width="572" height="309" into "100%" and "auto", and a client without CSS could not reserve its box.
        disable_basic_attributes=["width", "height"],
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
    ``slots.REQUIRED_SLOTS`` did not survive into the HTML or text.
    """
    papers = [paper_view(item, images=ctx.images, site_url=ctx.site_url) for item in items]
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
        "feedback_url": slots.FEEDBACK_URL,
    }
    envs = _environments((templates_dir or templates_path()).resolve())
    rendered = _render_digest(envs, values, papers)
    if _fits(rendered, ctx.site_url):
        return rendered
    # Too long to arrive whole: shorter snippets, then no snippet, thumbnail or feedback links, from the
    # lowest-ranked paper up. The papers, their links and the footer always stay.
    papers = [{**p, "summary": snippet(p["summary"], SHORT_SUMMARY_LIMIT)} for p in papers]
    rendered = _render_digest(envs, values, papers)
    if _fits(rendered, ctx.site_url):
        return rendered
    best, low, high = None, 0, len(papers) - 1  # how many papers keep their extras: the most that fits, by halving
    while low <= high:
        keep = (low + high) // 2
        candidate = _render_digest(envs, values, [p if i < keep else {**p, "summary": "", "image": None, "feedback": False}
                                                  for i, p in enumerate(papers)])
        fits = _fits(candidate, ctx.site_url)
        if fits or keep == 0:
            best = candidate
        low, high = (keep + 1, high) if fits else (low, keep - 1)
    best = best or rendered
    if not _fits(best, ctx.site_url):
        log.warning("the %s digest's HTML is %d bytes even with every card bare", ctx.issue_date,
                    len(best.html))
    return best


def sent_size(html: str, site_url: str) -> int:
    """Bytes of the HTML as a subscriber gets it: each placeholder becomes one of their links (the site's
    address, a path and a signed token), at most this much longer."""
    growth = len(site_url.encode()) + len("/u/") + TOKEN_ALLOWANCE
    return len(html.encode()) + sum(html.count(slot) * (growth - len(slot)) for slot in slots.BODY_SLOTS)


def _fits(rendered: RenderedIssue, site_url: str) -> bool:
    return sent_size(rendered.html, site_url) <= HTML_LIMIT


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
    for slot in slots.REQUIRED_SLOTS:
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
