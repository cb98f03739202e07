"""Thumbnails end to end: fetched at ingest from the papers API, kept once, shown in the mail from our own
site (or the source's, or not at all), on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import email
import email.policy
import re

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pipeline import service
from pipeline.models import Image, Paper
from pipeline.web.app import create_app
from tests.support.papers_api import THUMBNAIL_HOST, day_items, papers_api
from tests.support.paths import FIXTURES
from tests.support.sending import DAY, send_all, subscribe

ITEMS = day_items(FIXTURES / "hf_daily_papers_2025-03-21_1800Z.json")
IMG = re.compile(r'<img class="im" src="([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"')


def stored(cfg) -> tuple[dict[str, str | None], list[Image]]:
    with Session(service.engine(cfg)) as session:
        papers = {p.arxiv_id: p.thumbnail for p in session.exec(select(Paper))}
        return papers, list(session.exec(select(Image)))


def test_ingest_keeps_each_papers_thumbnail_once(cfg):
    client, requests = papers_api(ITEMS)
    summary = service.ingest(cfg, day=DAY, source="hf", client=client)
    papers, images = stored(cfg)
    assert summary.thumbnails == len(ITEMS) == len(images) and summary.thumbnails_skipped == []
    assert all(papers.values()) and {i.digest for i in images} == set(papers.values())
    assert all(i.content_type == "image/jpeg" and i.data[:3] == b"\xff\xd8\xff" for i in images)
    fetched = [r for r in requests if r.url.host == THUMBNAIL_HOST]
    assert len(fetched) == len(ITEMS)

    # The next ingest of the day fetches the list again, not the pictures.
    client, requests = papers_api(ITEMS)
    again = service.ingest(cfg, day=DAY, source="hf", client=client)
    assert again.thumbnails == 0 and not [r for r in requests if r.url.host == THUMBNAIL_HOST]
    assert stored(cfg) [0] == papers


def test_a_thumbnail_that_fails_is_reported_the_paper_goes_in_and_the_next_ingest_tries_again(cfg):
    broken = ITEMS[0]["thumbnail"]

    def flaky(request: httpx.Request) -> httpx.Response:
        if str(request.url) == broken:
            return httpx.Response(200, content=b"<html>not an image</html>")
        return httpx.Response(404)

    items = copy.deepcopy(ITEMS)
    items[1]["thumbnail"] = "https://tracker.example/pixel.png?reader=1"  # not an allowed host
    items[2]["thumbnail"] = "http://cdn-thumbnails.huggingface.co/plain-http.png"  # not https: never stored
    client, requests = papers_api(items, thumbnail=flaky)
    summary = service.ingest(cfg, day=DAY, source="hf", client=client)
    reasons = {s.ref: s.reason for s in summary.thumbnails_skipped}
    first, second, third = (item["paper"]["id"] for item in items[:3])
    assert reasons[first] == "thumbnail: not a PNG, JPEG, WebP or GIF image"
    assert reasons[second] == "thumbnail: host tracker.example is not in THUMBNAIL_HOSTS"
    assert third not in reasons and summary.new == len(items) and summary.thumbnails == 0
    assert "tracker.example" not in {r.url.host for r in requests}
    with Session(service.engine(cfg)) as session:
        assert session.exec(select(Paper.thumbnail_url).where(Paper.arxiv_id == third)).one() is None

    client, requests = papers_api(items)  # the source serves pictures again
    summary = service.ingest(cfg, day=DAY, source="hf", client=client)
    assert summary.thumbnails == len(items) - 2


def test_a_new_thumbnail_address_fetches_the_new_picture(cfg):
    client, _ = papers_api(ITEMS)
    service.ingest(cfg, day=DAY, source="hf", client=client)
    before, _ = stored(cfg)
    items = copy.deepcopy(ITEMS)
    items[0]["thumbnail"] += "?v=2"
    items[0]["paper"]["title"] += " (revised)"
    client, requests = papers_api(items)
    assert service.ingest(cfg, day=DAY, source="hf", client=client).thumbnails == 1
    after, images = stored(cfg)
    changed = items[0]["paper"]["id"]
    assert after[changed] != before[changed] and len(images) == len(ITEMS) + 1  # the old one stays for old issues
    assert {k: v for k, v in after.items() if k != changed} == {k: v for k, v in before.items() if k != changed}


def test_with_images_off_nothing_is_fetched(make_settings):
    cfg = make_settings(images="off")
    client, requests = papers_api(ITEMS)
    summary = service.ingest(cfg, day=DAY, source="hf", client=client)
    assert summary.thumbnails == 0 and {r.url.host for r in requests} == {"huggingface.co"}


def test_the_offline_sample_fetches_nothing(cfg):
    summary = service.ingest(cfg, day=DAY, source="sample")  # no client: a request would fail loudly
    assert summary.new and summary.thumbnails == 0 and summary.thumbnails_skipped == []


def built_issue_html(cfg) -> str:
    client, _ = papers_api(ITEMS)
    service.ingest(cfg, day=DAY, source="hf", client=client)
    issue, _ = service.build(cfg, day=DAY)
    return issue.html


def test_the_mail_loads_each_thumbnail_from_our_site_and_the_site_serves_it(cfg):
    html = built_issue_html(cfg)
    shown = IMG.findall(html)
    assert len(shown) == cfg.digest_size
    with TestClient(create_app(cfg)) as site:
        for src, width, height, alt in shown:
            assert src.startswith(f"{cfg.base_url}/images/") and src.endswith(".jpg")
            assert alt.startswith("Thumbnail: ") and (int(width), int(height)) == (572, 309)
            answer = site.get(src.removeprefix(cfg.base_url))
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
            assert answer.content[:3] == b"\xff\xd8\xff"
            assert "immutable" in answer.headers["cache-control"]
            again = site.get(src.removeprefix(cfg.base_url), headers={"If-None-Match": answer.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        digest = shown[0][0].rsplit("/", 1)[1].removesuffix(".jpg")
        for missing in (f"/images/{'0' * 64}.jpg", f"/images/{digest}.png", f"/images/{digest.upper()}.jpg",
                        f"/images/{digest[:-1]}.jpg", "/images/..%2Fpapermail.db"):
            assert site.get(missing).status_code == 404, missing


def test_every_reader_gets_the_same_image_addresses(cfg):
    client, _ = papers_api(ITEMS)
    service.ingest(cfg, day=DAY, source="hf", client=client)
    subscribe(cfg, ["ada@example.org", "grace@example.org"])
    service.build(cfg, day=DAY)
    send_all(cfg)
    sources = []
    for eml in sorted((cfg.outbox_dir / DAY.isoformat()).glob("*.eml")):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        sources.append([m[0] for m in IMG.findall(message.get_body(("html",)).get_content())])
    assert len(sources) == 2 and sources[0] == sources[1] and len(sources[0]) == cfg.digest_size


def test_remote_images_load_from_the_source_and_off_shows_none(make_settings, tmp_path):
    remote = make_settings(images="remote")
    shown = IMG.findall(built_issue_html(remote))
    by_url = {item["thumbnail"] for item in ITEMS}
    assert shown and all(src in by_url for src, *_ in shown)

    off = make_settings(images="off", database_url=f"sqlite:///{tmp_path / 'off.db'}")
    assert "<img" not in built_issue_html(off)


def test_with_a_thumbnail_on_every_card_the_issue_keeps_its_snippets_under_the_size_limit(cfg):
    from pipeline.compose.blocks import HTML_LIMIT
    from pipeline.compose.render import sent_size

    html = built_issue_html(cfg)
    cards = html.split(' id="p')[1:]
    assert len(cards) == cfg.digest_size and all('<img class="im"' in card for card in cards)
    assert sent_size(html, cfg.base_url) <= HTML_LIMIT
