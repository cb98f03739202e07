"""Render one issue of the digest: MJML + Jinja for the HTML part, Jinja for the text part.

An issue is rendered once, never per subscriber: with every candidate, cut into the blocks
(:mod:`pipeline.compose.blocks`) that each reader's selection is joined from. Where a subscriber's own links
go, the output carries the markers from :mod:`pipeline.compose.slots`; dispatch
substitutes them as bytes. Every string in an item came from the internet, so:
autoescape is on for the HTML templates, control characters are stripped from
everything, and every href passes :func:`safe_url`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from mjml import mjml2html
from premailer import Premailer

from pipeline.compose import slots
from pipeline.compose.blocks import (
    TOC_FROM,
    VARIANTS,
    Card,
    Cutter,
    IssueBlocks,
    Selection,
    count_label,
    holes,
    no_cut,
    sent_bytes,
    split,
    top,
    wrap,
)
from pipeline.compose.cards import paper_view, safe_url, truncate
from pipeline.compose.snippets import snippet
from pipeline.errors import RenderError
from pipeline.text import clean_text

SUBJECT_LIMIT = 150
log = logging.getLogger(__name__)

SHORT_SUMMARY_LIMIT = 140  # when the whole digest would be too long


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
        env.filters["wrap"] = wrap
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


def _values(items: Sequence[dict[str, Any]], ctx: DigestContext) -> tuple[dict[str, Any], list[str], str]:
    """What every rendering of the issue shares, the subject when each item leads, and the empty day's."""
    date_long = f"{'The week to ' if ctx.weekly else ''}{ctx.issue_date:%A, %-d %B %Y}"
    when = f"{'week to ' if ctx.weekly else ''}{ctx.issue_date:%-d %b %Y}"
    site_url = safe_url(ctx.site_url)
    values = {
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

    def subject(headline: str) -> str:
        return header_safe(f"{ctx.list_name} — {when}: {headline}", SUBJECT_LIMIT)

    views = [paper_view(item) for item in items]
    return values, [subject(v["title"]) for v in views], subject("no trending papers today")


def _variant(view: dict[str, Any], variant: str) -> dict[str, Any]:
    if variant == "short":
        return {**view, "summary": snippet(view["summary"], SHORT_SUMMARY_LIMIT)}
    if variant == "bare":
        return {**view, "summary": "", "image": None, "feedback": False}
    return view


def render_blocks(items: Sequence[dict[str, Any]], *, ctx: DigestContext,
                  templates_dir: Path | None = None) -> IssueBlocks:
    """Render the issue once with every candidate, in each card size, and cut it into blocks.

    Raises RenderError if a template or MJML fails, or if a placeholder from
    ``slots.REQUIRED_SLOTS`` did not survive into the HTML or text.
    """
    envs = _environments((templates_dir or templates_path()).resolve())
    values, subjects, subject_empty = _values(items, ctx)
    views = [paper_view(item, images=ctx.images, site_url=ctx.site_url) for item in items]
    cutter = Cutter()
    documents = {}
    for variant in VARIANTS if items else VARIANTS[:1]:
        papers = [{**_variant(view, variant), "anchor": i, "holes": holes(i, None, view["why"])}
                  for i, view in enumerate(views, 1)]
        rendered_html, rendered_text = _render_document(
            envs, {**values, "subject": subject_empty, "cut": cutter, "toc": bool(items), "also_at": 0, "count": ""},
            papers)
        documents[variant] = (split(rendered_html, cutter), split(rendered_text, cutter))
    html, text = documents["full"]
    parts = {f"html-{name}": html.get((name, 0), []) for name in ("head", "toc", "toc-end", "also", "tail")}
    parts |= {f"text-{name}": text.get((f"t-{name}" if name != "head" else name, 0), [])
              for name in ("head", "toc", "toc-end", "also", "tail")}
    cards = [{variant: Card(documents[variant][0][("card", i)], documents[variant][1][("t-card", i)],
                            sent_bytes(documents[variant][0][("card", i)], ctx.site_url))
              for variant in VARIANTS} for i in range(1, len(items) + 1)]
    return IssueBlocks(
        subjects=subjects, subject_empty=subject_empty, whys=[view["why"] for view in views], parts=parts,
        toc_items={"html": [html[("toc-item", i)] for i in range(1, len(items) + 1)],
                   "text": [text[("t-toc-item", i)] for i in range(1, len(items) + 1)]},
        cards=cards, site_url=ctx.site_url,
    )


def render_digest(items: Sequence[dict[str, Any]], *, ctx: DigestContext,
                  templates_dir: Path | None = None) -> RenderedIssue:
    """The global digest of ``items``: subject, inlined HTML and plain text, with the subscriber slots intact,
    joined from :func:`render_blocks` as every reader's digest is."""
    subject, html, text = render_blocks(items, ctx=ctx, templates_dir=templates_dir).joined(top(len(items)))
    return RenderedIssue(subject=subject, html=html, text=text)


def render_plain(items: Sequence[dict[str, Any]], *, ctx: DigestContext, selection: Selection,
                 variants: Sequence[str], templates_dir: Path | None = None) -> RenderedIssue:
    """A selection rendered whole, through the templates, MJML and premailer, each card in the size given:
    what joining the issue's blocks must give, byte for byte."""
    envs = _environments((templates_dir or templates_path()).resolve())
    values, subjects, subject_empty = _values(items, ctx)
    papers = []
    for position, (chosen, variant) in enumerate(zip(selection, variants, strict=True), 1):
        view = paper_view(items[chosen.index], images=ctx.images, site_url=ctx.site_url)
        papers.append({**_variant(view, variant), "anchor": chosen.index + 1,
                       "holes": holes(position, chosen.match, view["why"])})
    also_at = next((n for n, chosen in enumerate(selection) if chosen.also), None)
    subject = subjects[selection[0].index] if selection else subject_empty
    html, text = _render_document(envs, {**values, "subject": subject, "cut": no_cut,
                                         "toc": len(selection) >= TOC_FROM, "also_at": also_at,
                                         "count": count_label(len(selection))}, papers)
    return RenderedIssue(subject=subject, html=html, text=text)


def sent_size(html: str, site_url: str) -> int:
    """Bytes of the HTML as a subscriber gets it: each placeholder becomes one of their links."""
    return sent_bytes([html], site_url)


def _render_document(envs: tuple[jinja2.Environment, jinja2.Environment], values: dict[str, Any],
                     papers: list[dict[str, Any]]) -> tuple[str, str]:
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
    return html, text


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
