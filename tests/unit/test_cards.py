"""What a card shows of its paper's thumbnail and organization, from the frozen item, whatever the item holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from html.parser import HTMLParser

import pytest

from pipeline.compose.cards import CARD_IMAGE_WIDTH, paper_view
from pipeline.compose.render import render_digest
from pipeline.ingest.hf import parse_day
from tests.unit.test_render import CTX

DIGEST = "ab" * 32
REMOTE = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2503.16428.png"
SITE = "https://papers.example.org"


def item(**fields) -> dict:
    return {"title": "A <b>bold</b> paper", "url": "https://huggingface.co/papers/2503.16428",
            "thumbnail": {"digest": DIGEST, "width": 1144, "height": 618, "url": REMOTE}, **fields}


def test_proxied_loads_our_copy_at_the_cards_width():
    image = paper_view(item(), images="proxied", site_url=SITE + "/")["image"]
    assert image == {"src": f"{SITE}/images/{DIGEST}.jpg", "width": CARD_IMAGE_WIDTH, "height": 309,
                     "alt": "Thumbnail: A <b>bold</b> paper"}  # escaped by the template, like the title


class Images(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.found.append(dict(attrs))


def test_in_the_mail_the_alt_text_is_escaped_and_the_box_reserved():
    title = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    html = render_digest([item(title=title)], ctx=dataclasses.replace(CTX, images="proxied", site_url=SITE)).html
    (image,) = Images(html).found  # the title's markup made no element of its own
    assert image["src"] == f"{SITE}/images/{DIGEST}.jpg" and (image["width"], image["height"]) == ("572", "309")
    assert image["alt"] == f"Thumbnail: {title}" and "onerror" not in image
    assert "<script>" not in html


def test_the_site_gets_a_path():
    assert paper_view(item(), images="proxied")["image"]["src"] == f"/images/{DIGEST}.jpg"


def test_remote_loads_the_sources_picture_and_off_none():
    assert paper_view(item(), images="remote", site_url=SITE)["image"]["src"] == REMOTE
    assert paper_view(item(), images="off", site_url=SITE)["image"] is None
    assert paper_view(item(), site_url=SITE)["image"] is None  # off unless asked


def test_a_small_picture_is_not_blown_up():
    small = item(thumbnail={"digest": DIGEST, "width": 300, "height": 200, "url": REMOTE})
    assert paper_view(small, images="proxied", site_url=SITE)["image"] | {"src": ""} == {
        "src": "", "width": 300, "height": 200, "alt": "Thumbnail: A <b>bold</b> paper"}


@pytest.mark.parametrize("thumbnail", [
    None, "https://evil.example/x.png", {}, {"digest": DIGEST}, {"digest": DIGEST, "width": 0, "height": 10},
    {"digest": DIGEST, "width": "1144", "height": 618}, {"digest": DIGEST, "width": True, "height": 618},
    {"digest": "../../etc/passwd", "width": 10, "height": 10}, {"digest": DIGEST.upper(), "width": 10, "height": 10},
    {"digest": DIGEST + "\" onerror=\"alert(1)", "width": 10, "height": 10},
])
def test_a_malformed_stored_thumbnail_shows_none(thumbnail):
    assert paper_view(item(thumbnail=thumbnail), images="proxied", site_url=SITE)["image"] is None


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://cdn.example/x.png", "data:image/png;base64,AAAA",
                                 "https://user@cdn.example/x.png", None])
def test_remote_loads_only_a_plain_https_address(url):
    thumb = {"digest": DIGEST, "width": 100, "height": 100, "url": url}
    assert paper_view(item(thumbnail=thumb), images="remote", site_url=SITE)["image"] is None


def test_the_organization_is_cleaned_and_cut():
    view = paper_view(item(organization="Multimedia\u202e and Human\nUnderstanding Group " * 5))
    assert view["organization"].startswith("Multimedia and Human Understanding Group")
    assert len(view["organization"]) <= 80 and "\u202e" not in view["organization"]
    assert paper_view(item())["organization"] == ""


def record(**extra) -> dict:
    paper = {"id": "2602.23229", "title": "Large Multimodal Models", "summary": "Which model?", "upvotes": 1,
             "authors": [{"name": "Marco Garosi"}], **extra.pop("paper", {})}
    return {"paper": paper, "numComments": 0, **extra}


def parsed(*records: dict):
    return parse_day(json.dumps(list(records)).encode(), day=dt.date(2026, 3, 6)).papers


def test_ingest_reads_the_organization_and_the_thumbnail_address():
    (paper,) = parsed(record(thumbnail=REMOTE, paper={"organization": {
        "_id": "647ef9ce45baf21ad707cc59", "name": "MHUGLab", "fullname": "Multimedia and Human Understanding Group"}}))
    assert paper.organization == "Multimedia and Human Understanding Group" and paper.thumbnail_url == REMOTE
    (short,) = parsed(record(paper={"organization": {"name": "MHUGLab", "fullname": " "}}))
    assert short.organization == "MHUGLab" and short.thumbnail_url is None


@pytest.mark.parametrize(("organization", "thumbnail"), [
    ("MHUGLab", "http://cdn-thumbnails.huggingface.co/x.png"),
    ({"fullname": 42}, "javascript:alert(1)"),
    ([], "https://user:pw@cdn.example/x.png"),
    ({"fullname": None, "name": ""}, 42),
])
def test_a_malformed_organization_or_thumbnail_is_just_absent(organization, thumbnail):
    (paper,) = parsed(record(thumbnail=thumbnail, paper={"organization": organization}))
    assert paper.organization is None and paper.thumbnail_url is None
