"""render_digest: hostile input stays inert in the FINAL html (after MJML and premailer),
subscriber slots survive, the text part carries every link, and the HTML stays under Gmail's clip."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.compose import slots
from pipeline.compose.cards import SUMMARY_LIMIT, safe_url, short_authors, truncate
from pipeline.compose.render import (
    SUBJECT_LIMIT,
    DigestContext,
    RenderedIssue,
    header_safe,
    render_digest,
    templates_path,
)
from pipeline.errors import RenderError
from pipeline.models import MAX_DIGEST_SIZE

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "ingest" / "data" / "hf_daily_papers_2025-03-21_1800Z.json"
GMAIL_CLIP = 102 * 1024

CTX = DigestContext(
    list_name="Trending ML Papers",
    issue_date=dt.date(2025, 3, 21),
    archive_url="https://papers.example.org/issues/2025-03-21",
    site_url="https://papers.example.org",
    list_address="digest@papers.example.org",
)


def sample_items(n: int, *, thumbnails: bool = False) -> list[dict]:
    """The top ``n`` real papers of the sample day, shaped like frozen ranking output (with a stored
    thumbnail each if asked)."""
    entries = sorted(json.loads(SAMPLE.read_text()), key=lambda e: -e["paper"]["upvotes"])
    assert len(entries) >= n
    items = []
    for rank, entry in enumerate(entries[:n], 1):
        paper, aid = entry["paper"], entry["paper"]["id"]
        items.append(
            {
                "rank": rank,
                "arxiv_id": aid,
                "title": entry["title"],
                "authors": [a["name"] for a in paper["authors"]],
                "summary": entry["summary"],
                "url": f"https://huggingface.co/papers/{aid}",
                "abs_url": f"https://arxiv.org/abs/{aid}",
                "github_repo": paper.get("githubRepo"),
                "project_page": f"https://example.org/p/{aid}" if rank % 3 == 0 else None,
                "upvotes": paper["upvotes"],
                "comments": entry["numComments"],
                "github_stars": paper.get("githubStars"),
                "score": float(paper["upvotes"]),
                "why": f"+{paper['upvotes']} upvotes in the last 12 h",
                "thumbnail": {"digest": f"{rank:064x}", "width": 1144, "height": 618, "url": entry["thumbnail"]}
                if thumbnails else None,
            }
        )
    return items


def item(**overrides) -> dict:
    base = sample_items(1)[0]
    base.update(overrides)
    return base


class Doc(HTMLParser):
    """Every start tag with its attributes, and the visible text, of a parsed document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def anchors(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "a"]

    def hrefs(self) -> list[str]:
        return [a["href"] or "" for a in self.anchors() if "href" in a]

    def link_to(self, href: str) -> list[dict[str, str | None]]:
        return [a for a in self.anchors() if a.get("href") == href]


HOSTILE = [
    item(rank=1, title="<script>alert(1)</script>", github_repo="javascript:alert(1)"),
    item(
        rank=2,
        title='"><img src=x onerror=alert(1)>',
        project_page="data:text/html,<script>alert(1)</script>",
        github_repo="JaVaScRiPt:alert(document.cookie)",
    ),
    item(rank=3, summary='Read <a href="https://evil.example">this</a> now', url="/papers/relative"),
    item(rank=4, title="Innocent\r\nBcc: victim@example.com", authors=["Eve\r\nX-Evil: 1", "\x00Mallory\x1b"]),
    item(rank=5, why='<b onmouseover="alert(1)">hot</b>', abs_url="vbscript:msgbox(1)", project_page="//evil.example/x"),
]


@pytest.fixture(scope="module")
def hostile() -> RenderedIssue:
    return render_digest(HOSTILE, ctx=CTX)


@pytest.fixture(scope="module")
def ten() -> RenderedIssue:
    return render_digest(sample_items(10), ctx=CTX)


# --- hostile input ---------------------------------------------------------------------------


def test_hostile_markup_never_becomes_elements(hostile):
    doc = Doc(hostile.html)
    tags = {tag for tag, _ in doc.tags}
    assert "script" not in tags and "img" not in tags and "b" not in tags
    for tag, attrs in doc.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
    # ... but the text is shown, escaped, not silently dropped.
    visible = "".join(doc.text)
    assert "<script>alert(1)</script>" in visible
    assert '"><img src=x onerror=alert(1)>' in visible


def test_every_href_is_http_or_a_slot(hostile):
    doc = Doc(hostile.html)
    assert doc.hrefs()
    for href in doc.hrefs():
        if href in slots.BODY_SLOTS:
            continue
        if href.startswith(f"{slots.FEEDBACK_URL}?"):  # the reader's own feedback link, for one paper
            assert re.fullmatch(rf"{slots.FEEDBACK_URL}\?paper=[\w.%-]+&vote=(more|less)", href), href
            continue
        parts = urlsplit(href)
        assert parts.scheme in ("http", "https", "mailto") and (parts.netloc or parts.scheme == "mailto"), href
    for tag, attrs in doc.tags:
        for value in attrs.values():
            low = (value or "").replace(" ", "").lower()
            assert "javascript:" not in low and "vbscript:" not in low and "data:text" not in low, (tag, attrs)


def test_anchor_in_abstract_is_only_escaped(hostile):
    doc = Doc(hostile.html)
    assert not any("evil.example" in href for href in doc.hrefs())
    # lxml leaves quotes bare in text nodes; what matters is that "<" is escaped.
    assert hostile.html.count("evil.example") == 1
    assert '&lt;a href="https://evil.example"&gt;this&lt;/a&gt;' in hostile.html
    assert 'Read <a href="https://evil.example">this</a> now' in "".join(doc.text)


def test_unsafe_links_are_omitted_not_neutralised(hostile):
    doc = Doc(hostile.html)
    labels = "".join(doc.text)
    # Ranks 1 and 2 had hostile code links: only ranks 3-5 keep their real one.
    assert doc.hrefs().count(HOSTILE[2]["github_repo"]) == 3
    assert labels.count("Code") == 3
    assert "Project" not in labels  # both project pages were unsafe
    assert "evil.example/x" not in hostile.html
    # Rank 3's relative paper URL: its title is shown unlinked.
    assert not any(href.startswith("/") for href in doc.hrefs())
    assert "/papers/relative" not in hostile.text


def test_subject_and_text_have_no_injected_lines(hostile):
    assert "\r" not in hostile.subject and "\n" not in hostile.subject
    assert "\r" not in hostile.text and "\x00" not in hostile.text and "\x1b" not in hostile.text
    assert "\r" not in hostile.html and "\x00" not in hostile.html
    assert not any(line.startswith(("Bcc:", "X-Evil:")) for line in hostile.text.splitlines())
    issue = render_digest([item(title="Innocent\r\nBcc: victim@example.com")], ctx=CTX)
    assert issue.subject == "Trending ML Papers — 21 Mar 2025: Innocent Bcc: victim@example.com"


def test_no_double_escaping():
    issue = render_digest([item(title="Q&A for <LLMs>", authors=["O'Brien & Co"])], ctx=CTX)
    assert "Q&amp;A for &lt;LLMs&gt;" in issue.html
    assert "&amp;amp;" not in issue.html
    assert "Q&A for <LLMs>" in issue.text and "O'Brien & Co" in issue.text


# --- slots, links, structure -----------------------------------------------------------------


def test_slots_survive_in_html_and_text(ten):
    doc = Doc(ten.html)
    for slot in slots.BODY_SLOTS:
        assert slot in ten.html and slot in ten.text
    assert doc.link_to(slots.UNSUBSCRIBE_URL) and doc.link_to(slots.PREFERENCES_URL)
    assert doc.link_to(CTX.archive_url)
    assert f"Unsubscribe: {slots.UNSUBSCRIBE_URL}" in ten.text
    assert f"Preferences: {slots.PREFERENCES_URL}" in ten.text
    assert CTX.archive_url in ten.text and CTX.list_address in ten.html


def test_unsubscribe_link_is_visible_text(ten):
    html = ten.html
    start = html.index(f'href="{slots.UNSUBSCRIBE_URL}"')
    assert "Unsubscribe</a>" in html[start : start + 200]


def test_every_paper_link_is_in_both_parts(ten):
    items = sample_items(10)
    hrefs = set(Doc(ten.html).hrefs())
    for it in items:
        for key in ("url", "abs_url", "github_repo", "project_page"):
            if it[key]:
                assert it[key] in ten.text, (key, it[key])
                assert it[key] in hrefs, (key, it[key])
        assert it["title"] in " ".join(ten.text.split())


def test_text_part_is_wrapped(ten):
    for line in ten.text.splitlines():
        assert len(line) <= 78 or "://" in line, line


def test_figures_and_why_line(ten):
    first = sample_items(1)[0]
    figures = f"{first['upvotes']:,} upvotes · {first['comments']:,} comments · {first['github_stars']:,} stars"
    assert figures in ten.html and figures in ten.text  # in words, no icons
    assert not any(icon in ten.html + ten.text for icon in "▲💬★")
    assert f"Why it's trending:</span> {first['why']}" in ten.html.replace("&#x27;", "'").replace("&#39;", "'")
    assert "Why it's trending: " + first["why"] in " ".join(ten.text.split())
    no_stars = render_digest([item(github_stars=None, github_repo=None)], ctx=CTX)
    assert " stars" not in no_stars.html.split("Why it")[0].rsplit("</a></div>", 1)[-1]


def test_each_card_has_more_and_less_like_this_links_in_both_parts():
    issue = render_digest(sample_items(3), ctx=CTX)
    for arxiv_id in (i["arxiv_id"] for i in sample_items(3)):
        for vote in ("more", "less"):
            link = f"{slots.FEEDBACK_URL}?paper={arxiv_id}&vote={vote}"
            assert link in issue.text and link.replace("&", "&amp;") in issue.html
    assert issue.html.count(">More like this</a>") == issue.html.count(">Less like this</a>") == 3


def test_zero_items_renders_a_short_issue():
    issue = render_digest([], ctx=CTX)
    assert "No trending papers today" in issue.html and "No trending papers today" in issue.text
    assert "no trending papers today" in issue.subject
    for slot in slots.REQUIRED_SLOTS:
        assert slot in issue.html and slot in issue.text
    assert slots.FEEDBACK_URL not in issue.html  # no card, no feedback link


def test_subject_is_header_safe_and_bounded():
    issue = render_digest([item(title="Scaling " * 60)], ctx=CTX)
    assert issue.subject.startswith("Trending ML Papers — 21 Mar 2025: Scaling")
    assert len(issue.subject) <= SUBJECT_LIMIT and issue.subject.endswith("Scaling…")


def test_css_is_inlined_and_lean(ten):
    doc = Doc(ten.html)
    assert ten.html.startswith("<!DOCTYPE html>")  # premailer must not drop it (quirks mode)
    titles = [attrs for tag, attrs in doc.tags if attrs.get("class") == "t"]
    assert len(titles) == 10 and all("font-size:18px" in (a.get("style") or "") for a in titles)
    assert not any(tag == "link" for tag, _ in doc.tags)
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", ten.html, re.S))
    outside_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", styles)
    assert ".why" in styles and ".why" not in outside_media  # inlined rules stay only where inlining can't go
    assert "fonts.googleapis" not in ten.html


@pytest.mark.parametrize(("n", "budget_kb"), [(10, 60), (20, 100), (MAX_DIGEST_SIZE, 100)])
def test_size_stays_under_gmail_clip(n, budget_kb):
    """Also at the largest size a subscriber can choose."""
    issue = render_digest(sample_items(n), ctx=CTX)
    size = len(issue.html.encode("utf-8"))
    assert size < budget_kb * 1024 < GMAIL_CLIP + 1, f"{n} papers: {size / 1024:.1f} KB"


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ([], ""),
        (["A"], "A"),
        (["A", "B", "C"], "A, B, C"),
        (["A", "B", "C", "D"], "A, B, C et al."),
        (["  A\r\n", "", "B\tB"], "A, B B"),
    ],
)
def test_short_authors(authors, expected):
    assert short_authors(authors) == expected


def test_summary_is_cut_on_a_word():
    words = "the attention of a model " * 40
    issue = render_digest([item(summary=words)], ctx=CTX)
    shown = next(t for t in Doc(issue.html).text if t.startswith("the attention"))
    assert len(shown) <= SUMMARY_LIMIT and shown.endswith("…") and shown[:-1].split()[-1] in words.split()


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("one two three four", 12, "one two…"),
        ("supercalifragilistic", 8, "superca…"),
        ("end of a sentence. Next", 21, "end of a sentence…"),
    ],
)
def test_truncate(text, limit, expected):
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= limit


def test_header_safe():
    assert header_safe("a\r\nBcc: x@y\x00\t  z", 100) == "a Bcc: x@y z"
    assert header_safe("\u202eevil", 100) == "evil"
    out = header_safe("word " * 50, 30)
    assert len(out) <= 30 and out.endswith("word…") and "\n" not in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://arxiv.org/abs/2505.16864", "https://arxiv.org/abs/2505.16864"),
        ("  http://example.org/x?a=1&b=2 ", "http://example.org/x?a=1&b=2"),
        ("javascript:alert(1)", None),
        (" JAVASCRIPT:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("/relative/path", None),
        ("//evil.example/x", None),
        ("https://", None),
        ("https://huggingface.co@evil.example/", None),
        ("https://exa mple.org/", None),
        ("https://example.org/\r\nX: y", None),
        ("https://[::1", None),
        ("mailto:a@b.c", None),
        (None, None),
        (42, None),
    ],
)
def test_safe_url(value, expected):
    assert safe_url(value) == expected


# --- failures --------------------------------------------------------------------------------


@pytest.fixture
def template_copy(tmp_path) -> Path:
    shutil.copytree(templates_path(), tmp_path / "templates")
    return tmp_path / "templates"


def test_lost_placeholder_raises(template_copy):
    for name in ("_footer.mjml", "digest.mjml"):  # the footer's link and the one at the top
        page = template_copy / name
        page.write_text(page.read_text().replace("{{ unsubscribe_url }}", "https://example.org/u"))
    with pytest.raises(RenderError, match=slots.UNSUBSCRIBE_URL) as err:
        render_digest(sample_items(2), ctx=CTX, templates_dir=template_copy)
    assert "\n" not in str(err.value)


def test_broken_mjml_raises(template_copy):
    page = template_copy / "digest.mjml"
    page.write_text(page.read_text().replace("</mjml>", ""))
    with pytest.raises(RenderError, match="MJML") as err:
        render_digest(sample_items(2), ctx=CTX, templates_dir=template_copy)
    assert "\n" not in str(err.value)


def test_templates_path_has_the_templates():
    for name in ("digest.mjml", "digest.txt", "_paper.mjml", "_footer.mjml"):
        assert (templates_path() / name).is_file()


def test_more_than_ten_papers_get_a_table_of_contents_linking_to_their_cards():
    eleven = render_digest(sample_items(11), ctx=CTX)
    doc = Doc(eleven.html)
    toc = [a["href"] for a in doc.anchors() if (a.get("href") or "").startswith("#")]
    ids = [attrs["id"] for _, attrs in doc.tags if (attrs.get("id") or "").startswith("p")]
    assert toc == [f"#p{i}" for i in range(1, 12)] and ids == [f"p{i}" for i in range(1, 12)]
    assert eleven.text.index("In this issue:") < eleven.text.index("11. ")
    ten = render_digest(sample_items(10), ctx=CTX)
    assert "In this issue" not in ten.html and "In this issue" not in ten.text


def test_each_card_says_when_it_was_listed_and_marks_an_older_paper():
    old = item(listed_on="2025-03-21", published_on="2023-01-05")
    recent = item(listed_on="2025-03-21", published_on="2025-03-19", rank=2)
    undated = item(rank=3)
    undated.pop("listed_on", None)
    issue = render_digest([old, recent, undated], ctx=CTX)
    text = " ".join(" ".join(Doc(issue.html).text).split())
    assert "Listed 21 Mar 2025 · on arXiv since 5 Jan 2023 · older paper" in text
    assert "Listed 21 Mar 2025 · on arXiv since 19 Mar 2025" in text
    assert text.count("older paper") == 1 and text.count("Listed ") == 2
    plain = " ".join(issue.text.split())
    assert "Listed 21 Mar 2025 · on arXiv since 5 Jan 2023 · older paper" in plain and plain.count("Listed ") == 2
