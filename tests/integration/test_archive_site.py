"""The archive as a site and as feeds, through the HTTP interface, on SQLite and PostgreSQL.

Pages and feeds are made from the issues' frozen items, never from the mail's
HTML (which carries one reader's footer); only issues whose sending has started
are public.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session

from pipeline import service
from pipeline.audience.subscribers import add_subscriber
from pipeline.compose import slots
from pipeline.models import Edition
from pipeline.web.pages import SECURITY_HEADERS
from tests.support.feeds import (
    MAIL_ONLY,
    Markup,
    assert_atom,
    assert_json_feed,
    assert_safe_fragment,
    item,
    items,
    store_issue,
)

DAY = dt.date(2025, 3, 21)
BASE = "https://papers.example.org"
# The mail's footer and each reader's own links; the call to subscribe may promise a one-click unsubscribe.
PERSONAL = ("Unsubscribe", "Preferences", "because you subscribed", "/u/", "/p/", "pm-slot", MAIL_ONLY,
            *slots.BODY_SLOTS)
FEED_TAGS = {"p", "a", "h3", "em", "strong"}


def sent(day: dt.date, hour: int = 7) -> dt.datetime:
    """When an issue of ``day`` went out: the next morning."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hour), tzinfo=dt.UTC)


def cards(html: str) -> list[str]:
    return re.findall(r'<article class="card paper"[^>]*>(.*?)</article>', html, re.S)


def card_titles(html: str) -> list[str]:
    return [re.search(r"<h2>(?:<a [^>]*>)?(.*?)(?:</a>)?</h2>", card, re.S).group(1) for card in cards(html)]


def rel(html: str, name: str) -> str | None:
    match = re.search(rf'<a href="([^"]*)" rel="{name}">', html)
    return match.group(1) if match else None


def assert_public(html: str) -> None:
    for words in PERSONAL:
        assert words not in html, words


def assert_archive_headers(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "set-cookie" not in response.headers


# --- issue pages ---------------------------------------------------------------------------------


def test_an_issue_page_shows_the_frozen_papers_in_the_site_layout(client, cfg):
    service.ingest(cfg, day=DAY, source="sample")
    with Session(service.engine(cfg)) as session:
        add_subscriber(session, email="reader@example.org", confirmed=True)
        session.commit()
    issue, _ = service.build(cfg, day=DAY)
    service.start_sending(cfg, day=DAY)

    r = client.get("/issues/2025-03-21")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert_archive_headers(r)
    html = r.text
    assert f'<div class="brand">{cfg.list_name}</div>' in html and "<footer>" in html  # the site's own layout
    assert "<h1>Friday, 21 March 2025</h1>" in html and "Daily issue" in html
    shown = issue.items[:issue.size]
    assert card_titles(html) == [item["title"] for item in shown]  # every paper of the issue, in its order
    assert [f'id="p{i}"' in html for i in range(1, len(shown) + 1)] == [True] * len(shown)
    assert f"{len(shown)} papers" in html
    first = cards(html)[0]
    assert f'href="https://huggingface.co/papers/{shown[0]["arxiv_id"]}"' in first
    assert "Why it's trending:" in first and "upvote" in first
    assert re.search(r'<form method="post" action="/subscribe">', html)  # the call to subscribe
    assert 'href="/issues">All issues</a>' in html
    assert 'href="/feed.atom"' in html and 'href="/feed.json"' in html and "Feeds:" in html
    assert_public(html)


def test_a_page_comes_from_the_items_not_the_mail_html(client, cfg):
    store_issue(cfg, DAY, papers=items(12, "Frozen"), size=10, sent_at=sent(DAY))  # the mail showed ten
    html = client.get("/issues/2025-03-21").text
    assert card_titles(html) == [f"Frozen number {n}" for n in range(1, 11)]
    assert "Frozen number 11" not in html
    assert_public(html)


HOSTILE = item(1, '<script>alert("title")</script><img src=x onerror=alert(1)>', url="javascript:alert(1)",
               abs_url="javascript:alert(2)", github_repo="https://user:pw@evil.example/repo",
               project_page="data:text/html,<script>alert(3)</script>",
               authors=['"><b onmouseover=alert(4)>Mallory</b>'], summary="</p><iframe src=https://evil.example>",
               why="<style>*{display:none}</style>")


def test_a_hostile_paper_is_shown_as_text_without_its_unsafe_links(client, cfg):
    store_issue(cfg, DAY, papers=[HOSTILE, item(2)], sent_at=sent(DAY))
    r = client.get("/issues/2025-03-21")
    assert r.status_code == 200
    html = r.text.split("</head>")[1]  # the page's own <style> is in the head
    card = cards(html)[0]
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in card  # shown, escaped
    for bad in ("<script", "<img", "<iframe", "<style", "<b ", "javascript:", "data:", "evil.example\""):
        assert bad not in html, bad
    markup = Markup(html)
    assert not [name for name, _ in markup.attributes if name.startswith("on")]
    assert all(href.startswith(("/", "https://")) for href in markup.hrefs), markup.hrefs
    assert "<h2>&lt;script&gt;" in card  # no safe URL: a title without a link
    assert_public(html)


def test_an_organization_and_an_image_show_when_the_card_has_them(client, cfg, monkeypatch):
    from pipeline.web import archive

    real = archive.paper_view
    extras = {
        1: {"organization": "Example Lab", "image": {"src": "https://cdn.example.org/1.jpg", "width": 640,
                                                     "height": 360, "alt": "A diagram <of> it"}},
        2: {"organization": "", "image": {"src": "javascript:alert(1)", "width": 1, "height": 1, "alt": "x"}},
        3: {"image": {"src": "/images/" + "a" * 64 + ".jpg", "width": "640", "height": None, "alt": None}},
    }
    monkeypatch.setattr(archive, "paper_view",
                        lambda frozen, **kw: {**real(frozen, **kw), **extras.get(frozen["rank"], {})})
    store_issue(cfg, DAY, papers=items(4), sent_at=sent(DAY))
    first, second, third, fourth = cards(client.get("/issues/2025-03-21").text)
    assert '<p class="au">Ada Lovelace, Alan Turing · Example Lab</p>' in first
    assert ('<img class="fig" src="https://cdn.example.org/1.jpg" width="640" height="360" '
            'alt="A diagram &lt;of&gt; it" loading="lazy">') in first
    assert "<img" not in second and "javascript" not in second and " · </p>" not in second
    assert f'<img class="fig" src="/images/{"a" * 64}.jpg" alt="" loading="lazy">' in third  # the site's own copy
    assert "<img" not in fourth  # a card without the keys at all


def test_a_stored_thumbnail_is_loaded_from_the_site_itself(client, cfg):
    digest = "0123456789abcdef" * 4
    store_issue(cfg, DAY, sent_at=sent(DAY), papers=[
        item(1, "With a picture", organization="Example Lab", thumbnail={"digest": digest, "width": 1144,
                                                                          "height": 572}),
        item(2, "Without one")])
    first, second = cards(client.get("/issues/2025-03-21").text)
    assert re.search(rf'<img class="fig" src="/images/{digest}.jpg" width="\d+" height="\d+" '
                     r'alt="Thumbnail: With a picture" loading="lazy">', first)
    assert "· Example Lab</p>" in first
    assert "<img" not in second


def test_previous_and_next_are_sent_issues_of_the_same_edition(client, cfg):
    for day in (18, 20, 22):
        store_issue(cfg, dt.date(2025, 3, day), sent_at=sent(dt.date(2025, 3, day)))
    store_issue(cfg, dt.date(2025, 3, 19))  # built, never sent
    store_issue(cfg, dt.date(2025, 3, 23))
    store_issue(cfg, dt.date(2025, 3, 14), Edition.weekly, sent_at=sent(dt.date(2025, 3, 14)))
    store_issue(cfg, dt.date(2025, 3, 21), Edition.weekly, sent_at=sent(dt.date(2025, 3, 21)))
    store_issue(cfg, dt.date(2025, 3, 28), Edition.weekly)

    def neighbours(path: str) -> tuple[str | None, str | None]:
        html = client.get(path).text
        return rel(html, "prev"), rel(html, "next")

    assert neighbours("/issues/2025-03-20") == ("/issues/2025-03-18", "/issues/2025-03-22")
    assert neighbours("/issues/2025-03-18") == (None, "/issues/2025-03-20")
    assert neighbours("/issues/2025-03-22") == ("/issues/2025-03-20", None)
    assert neighbours("/issues/2025-03-21/weekly") == ("/issues/2025-03-14/weekly", None)
    assert neighbours("/issues/2025-03-14/weekly") == (None, "/issues/2025-03-21/weekly")
    html = client.get("/issues/2025-03-21/weekly").text
    assert "<h1>The week to Friday, 21 March 2025</h1>" in html and "Weekly issue" in html
    assert '<a href="/issues/2025-03-14/weekly" rel="prev">← 14 Mar 2025</a>' in html


@pytest.mark.parametrize("path", ["/issues/2025-03-19", "/issues/2025-03-21/weekly", "/issues/2025-03-20",
                                  "/issues/2025-02-30", "/issues/2025-3-21", "/issues/2025-03-21T00:00",
                                  "/issues/+2025-03-21", "/issues/2025-03-21/daily"])
def test_unsent_unknown_and_malformed_issues_are_404(client, cfg, path):
    store_issue(cfg, dt.date(2025, 3, 19))  # built, never sent
    store_issue(cfg, DAY, Edition.weekly)
    store_issue(cfg, DAY, sent_at=sent(DAY))
    r = client.get(path)
    assert r.status_code == 404 and "Page not found" in r.text
    assert client.get("/issues/2025-03-21").status_code == 200


# --- the list of issues ----------------------------------------------------------------------------


def test_the_list_shows_each_sent_issue_with_its_top_three_titles_newest_first(client, cfg):
    store_issue(cfg, dt.date(2025, 3, 20), papers=items(12, "Thursday"), size=10, sent_at=sent(dt.date(2025, 3, 20)))
    store_issue(cfg, DAY, papers=items(8, "Friday"), sent_at=sent(DAY))
    store_issue(cfg, DAY, Edition.weekly, papers=items(2, "Week"), sent_at=sent(DAY, 8))
    store_issue(cfg, dt.date(2025, 3, 22), papers=items(5, "Unsent"))
    r = client.get("/issues")
    assert r.status_code == 200
    assert_archive_headers(r)
    rows = re.findall(r'<li class="issue">(.*?)</ol>', r.text, re.S)
    assert len(rows) == 3 and "Unsent" not in r.text
    friday, week, thursday = rows
    assert "daily · 8 papers" in friday and 'href="/issues/2025-03-21">Friday, 21 March 2025' in friday
    assert re.findall(r'<li><a href="([^"]*)">([^<]*)</a></li>', friday) == [
        ("/issues/2025-03-21#p1", "Friday number 1"), ("/issues/2025-03-21#p2", "Friday number 2"),
        ("/issues/2025-03-21#p3", "Friday number 3")]
    assert "weekly · 2 papers" in week and "Week number 2" in week
    assert 'href="/issues/2025-03-21/weekly#p1"' in week
    assert "daily · 10 papers" in thursday  # the issue's size, not every item it froze
    assert "Feeds:" in r.text and 'href="/feed.atom"' in r.text
    assert_public(r.text)


def test_the_list_is_paginated(client, cfg, monkeypatch):
    monkeypatch.setattr("pipeline.web.archive.PAGE_SIZE", 3)
    for n in range(7):
        day = DAY - dt.timedelta(days=n)
        store_issue(cfg, day, sent_at=sent(day))

    def days(html: str) -> list[str]:
        return re.findall(r'<a class="issue-title" href="/issues/([\d-]+)">', html)

    first, second, third = (client.get(path).text for path in ("/issues", "/issues?page=2", "/issues?page=3"))
    assert days(first) == ["2025-03-21", "2025-03-20", "2025-03-19"]
    assert (rel(first, "prev"), rel(first, "next")) == (None, "/issues?page=2")
    assert days(second) == ["2025-03-18", "2025-03-17", "2025-03-16"]
    assert (rel(second, "prev"), rel(second, "next")) == ("/issues", "/issues?page=3")
    assert days(third) == ["2025-03-15"] and (rel(third, "prev"), rel(third, "next")) == ("/issues?page=2", None)
    assert client.get("/issues?page=4").status_code == 404
    for bad in ("0", "-1", "two", "1.5", "10001", "99999999999999999999999"):
        assert client.get(f"/issues?page={bad}").status_code == 400, bad


def test_the_list_stays_small_however_long_the_archive(client, cfg):
    long_titles = [item(n, ("A long title about attention " * 10).strip()) for n in range(1, 11)]
    start = dt.date(2022, 1, 1)
    with Session(service.engine(cfg)) as session:
        from pipeline.models import Issue

        for n in range(200):
            day = start + dt.timedelta(days=n)
            session.add(Issue(date=day, edition=Edition.daily, as_of=sent(day), size=10, items=long_titles,
                              subject="s", html="h", text="t", send_started_at=sent(day)))
        session.commit()
    r = client.get("/issues")
    assert r.text.count('<li class="issue">') == 30 and rel(r.text, "next") == "/issues?page=2"
    assert len(r.content) < 60_000


def test_an_empty_archive_says_so(client):
    r = client.get("/issues")
    assert r.status_code == 200 and "No issue has been sent yet" in r.text
    assert rel(r.text, "next") is None


# --- feeds ---------------------------------------------------------------------------------------------


def test_the_feeds_hold_the_latest_sent_issues_newest_first(client, cfg):
    store_issue(cfg, dt.date(2025, 3, 20), papers=[item(1, "Older paper", why="40 upvotes in 3 hours"), item(2)],
                sent_at=sent(dt.date(2025, 3, 20)))
    store_issue(cfg, DAY, papers=[item(1, "Newest paper", summary="It attends.", why="99 upvotes in 6 hours")],
                sent_at=sent(DAY))
    store_issue(cfg, DAY, Edition.weekly, papers=items(3, "Weekly"), sent_at=sent(DAY, 9))
    store_issue(cfg, dt.date(2025, 3, 22), papers=[item(1, "Not sent yet")])
    order = [f"{BASE}/issues/2025-03-21/weekly", f"{BASE}/issues/2025-03-21", f"{BASE}/issues/2025-03-20"]

    atom = client.get("/feed.atom")
    assert atom.status_code == 200 and atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert_archive_headers(atom)
    parsed, _ = assert_atom(atom.content)
    assert parsed.feed.id == f"{BASE}/feed.atom" and parsed.feed.title == cfg.list_name
    assert {(link.rel, link.href) for link in parsed.feed.links} == {("self", f"{BASE}/feed.atom"),
                                                                     ("alternate", f"{BASE}/issues")}
    assert parsed.feed.updated == "2025-03-22T09:00:00Z"  # the last issue sent
    assert [e.id for e in parsed.entries] == order == [e.link for e in parsed.entries]
    assert parsed.entries[1].title == "Friday, 21 March 2025: Newest paper"
    assert parsed.entries[0].title == "The week to Friday, 21 March 2025: Weekly number 1"
    assert parsed.entries[1].published == "2025-03-22T07:00:00Z"
    content = parsed.entries[1].content[0]
    assert content.type == "text/html" and "Newest paper" in content.value and "It attends." in content.value
    assert "99 upvotes in 6 hours" in content.value
    assert "Not sent yet" not in atom.text

    feed = client.get("/feed.json")
    assert feed.status_code == 200 and feed.headers["content-type"] == "application/feed+json; charset=utf-8"
    assert_archive_headers(feed)
    doc = assert_json_feed(feed.content)
    assert doc["feed_url"] == f"{BASE}/feed.json" and doc["home_page_url"] == f"{BASE}/issues"
    assert [i["id"] for i in doc["items"]] == order == [i["url"] for i in doc["items"]]
    older = doc["items"][2]
    assert older["date_published"] == "2025-03-21T07:00:00Z"
    assert "Older paper" in older["content_html"] and "Paper number 2" in older["content_html"]
    assert "Why it's trending: 40 upvotes in 3 hours" in older["content_text"]
    assert "Not sent yet" not in feed.text
    assert_public(atom.text + feed.text)


def test_the_feeds_hold_twenty_issues(client, cfg):
    for n in range(23):
        day = DAY - dt.timedelta(days=n)
        store_issue(cfg, day, sent_at=sent(day))
    ids = [e.id for e in assert_atom(client.get("/feed.atom").content)[0].entries]
    assert len(ids) == 20 and ids[0] == f"{BASE}/issues/2025-03-21" and ids[-1] == f"{BASE}/issues/2025-03-02"
    assert [i["id"] for i in assert_json_feed(client.get("/feed.json").content)["items"]] == ids


def test_a_hostile_paper_cannot_inject_markup_into_either_feed(client, cfg):
    store_issue(cfg, DAY, papers=[HOSTILE], sent_at=sent(DAY))
    _, root = assert_atom(client.get("/feed.atom").content)
    html = root.find("{http://www.w3.org/2005/Atom}entry").findtext("{http://www.w3.org/2005/Atom}content")
    doc = assert_json_feed(client.get("/feed.json").content)
    for fragment in (html, doc["items"][0]["content_html"]):
        markup = assert_safe_fragment(fragment, allowed=FEED_TAGS)
        assert "<script" not in fragment and "javascript:" not in fragment and "data:" not in fragment
        assert not [href for href in markup.hrefs if "evil.example" in href]
        assert "&lt;script&gt;" in fragment


def test_an_empty_archive_gives_valid_feeds(client):
    parsed, _ = assert_atom(client.get("/feed.atom").content)
    assert parsed.entries == [] and parsed.feed.title
    assert assert_json_feed(client.get("/feed.json").content)["items"] == []


@pytest.mark.parametrize("path", ["/feed.atom", "/feed.json"])
def test_a_head_of_a_feed_is_its_get_without_the_body(client, cfg, path):
    store_issue(cfg, DAY, sent_at=sent(DAY))
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200 and dict(head.headers) == dict(got.headers)
    assert head.content == b""


# --- every page names the feeds -------------------------------------------------------------------------


def test_every_page_names_the_feeds_in_its_head(client, cfg):
    store_issue(cfg, DAY, sent_at=sent(DAY))
    for path in ("/", "/issues", "/issues/2025-03-21", "/nowhere", "/u/not-a-token"):
        head = client.get(path).text.split("</head>")[0]
        assert '<link rel="alternate" type="application/atom+xml"' in head and 'href="/feed.atom"' in head, path
        assert '<link rel="alternate" type="application/feed+json"' in head and 'href="/feed.json"' in head, path
