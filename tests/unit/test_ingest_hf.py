"""Hugging Face daily papers: parse (pure) and fetch (MockTransport), plus the file source."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from pipeline.errors import DayNotAvailable, IngestError
from pipeline.ingest import (
    day_from_name,
    fetch_day,
    fetched_at_from_name,
    parse_day,
    parse_file,
    read_file,
    sample_files,
)
from pipeline.ingest.hf import github_repo_url, normalize_arxiv_id, web_url
from pipeline.ingest.records import Skipped
from pipeline.text import clean_text
from tests.support.paths import FIXTURES

DAY = date(2025, 3, 21)
SAMPLE_0600 = FIXTURES / "hf_daily_papers_2025-03-21_0600Z.json"
SAMPLE_1800 = FIXTURES / "hf_daily_papers_2025-03-21_1800Z.json"
HOSTILE = FIXTURES / "hf_page_hostile.json"
API = "https://huggingface.co/api"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- parse: the real sample -------------------------------------------------


def test_sample_parses_completely():
    result = parse_day(SAMPLE_0600.read_bytes(), day=DAY)
    assert len(result.papers) == 45
    assert result.skipped == []
    assert result.papers[0].arxiv_id == "2505.19089"
    assert result.papers[-1].arxiv_id == "2310.00224"
    assert len({p.arxiv_id for p in result.papers}) == 45
    assert {p.source for p in result.papers} == {"hf"}
    assert {p.listed_on for p in result.papers} == {DAY}


def test_sample_field_mapping():
    papers = {p.arxiv_id: p for p in parse_day(SAMPLE_0600.read_bytes(), day=DAY).papers}
    x = papers["2503.16428"]
    assert x.title == "XAttention: Block Sparse Attention with Antidiagonal Scoring"
    assert x.abstract.startswith("Long-Context Transformer Models (LCTMs) are vital")
    assert x.authors == ("Ruyi Xu", "Guangxuan Xiao", "Haofeng Huang", "Junxian Guo", "Song Han")
    assert x.upvotes == 22  # paper.upvotes
    assert x.comments == 2  # top-level numComments
    assert x.github_stars == 7
    assert x.github_repo == "https://github.com/mit-han-lab/x-attention"
    assert x.project_page is None
    assert x.published_at == utc(2025, 3, 20, 17, 4)
    assert x.submitted_at == utc(2025, 3, 21, 5, 28)
    assert x.published_at.tzinfo is UTC
    assert x.summary is None and x.keywords == ()

    plain = papers["2505.19089"]
    assert (plain.upvotes, plain.comments, plain.github_stars, plain.github_repo) == (22, 0, None, None)
    assert plain.authors == ("Xuejie Liu", "Anji Liu", "Guy Van den Broeck", "Yitao Liang")

    # A link into a subfolder of a repository is reduced to the repository.
    assert papers["2501.07047"].github_repo == "https://github.com/google/jaxite"
    assert papers["2501.07047"].github_stars == 23


def test_second_snapshot_carries_the_later_engagement():
    later = {p.arxiv_id: p for p in parse_day(SAMPLE_1800.read_bytes(), day=DAY).papers}
    assert (later["2505.16864"].upvotes, later["2505.16864"].comments, later["2505.16864"].github_stars) == (335, 6, 40)


def test_pages_as_list_equal_a_single_page():
    raw = json.loads(SAMPLE_0600.read_bytes())
    pages = [json.dumps(raw[:20]).encode(), json.dumps(raw[20:40]).encode(), json.dumps(raw[40:]).encode()]
    assert parse_day(pages, day=DAY) == parse_day(SAMPLE_0600.read_bytes(), day=DAY)


def test_source_name_is_passed_through():
    result = parse_day(SAMPLE_0600.read_bytes(), day=date(2025, 3, 22), source="file")
    assert {p.source for p in result.papers} == {"file"}
    assert {p.listed_on for p in result.papers} == {date(2025, 3, 22)}


# --- parse: hostile input ---------------------------------------------------


def test_hostile_page_counts_and_reasons():
    result = parse_day(HOSTILE.read_bytes(), day=DAY)
    assert [p.arxiv_id for p in result.papers] == ["2505.19089", "2503.16428", "2503.20001", "hep-th/9901001"]
    assert result.skipped == [
        Skipped("#3", "missing id"),
        Skipped("2503.20002", "authors is not a list"),
        Skipped("2503.20003", "upvotes is not a non-negative integer"),
        Skipped("2503.20004", "upvotes is not a non-negative integer"),
        Skipped("2503.20005", "empty title"),
        Skipped("../../etc", "invalid arXiv id"),
        Skipped("2503.20006", "withdrawn"),
        Skipped("2505.19089", "duplicate id"),
        Skipped("#11", "not an object"),
        Skipped("2503.20007", "publishedAt is not an ISO 8601 timestamp with a time zone"),
        Skipped("#13", "missing paper object"),
        Skipped("2503.16428v2", "duplicate id"),
        Skipped("2503.20008", "githubStars is not a non-negative integer"),
    ]


def test_a_withdrawn_record_is_skipped_and_named_for_the_store():
    result = parse_day(HOSTILE.read_bytes(), day=DAY)
    assert result.withdrawn == {"2503.20006": datetime(2025, 3, 21, 10, tzinfo=UTC)}


def test_duplicate_keeps_the_first_record():
    first = parse_day(HOSTILE.read_bytes(), day=DAY).papers[0]
    assert first.arxiv_id == "2505.19089"
    assert first.upvotes == 22  # not the duplicate's 999
    assert first.title.startswith("Plug-and-Play")


def test_hostile_title_is_kept_with_line_breaks_collapsed():
    paper = {p.arxiv_id: p for p in parse_day(HOSTILE.read_bytes(), day=DAY).papers}["2503.20001"]
    # Not skipped, not escaped here (render escapes); but no CR/LF survives to reach a header.
    assert paper.title == "Attention <script>alert(1)</script> Bcc: victim@example.org"
    assert paper.abstract == "We study tabs, newlines and control characters in text."
    assert paper.authors == ("Ada Lovelace", "Grace Hopper")  # hidden, blank, non-object dropped
    assert paper.github_repo is None  # http:// is not accepted
    assert paper.project_page == "https://example.org/project"
    assert (paper.upvotes, paper.comments) == (7, 2)
    for text in (paper.title, paper.abstract, *paper.authors):
        assert not any(ch in text for ch in "\r\n\t\x00\x1b\u202e")


def test_optional_fields_are_cleaned_or_dropped():
    papers = {p.arxiv_id: p for p in parse_day(HOSTILE.read_bytes(), day=DAY).papers}
    x = papers["2503.16428"]
    assert x.summary == "XAttention speeds up long-context inference with block-sparse attention."
    assert x.keywords == ("sparse attention", "long context")  # strings only, cleaned, deduped
    assert x.project_page is None  # javascript: dropped, the paper kept
    old = papers["hep-th/9901001"]
    assert old.github_repo is None  # github.com.evil.example is not GitHub
    assert old.project_page is None  # user@host URLs are refused


def test_timestamps_with_offsets_become_utc_and_naive_ones_are_rejected():
    item = json.loads(SAMPLE_0600.read_bytes())[0]
    item["paper"]["publishedAt"] = "2025-03-20T19:00:00+02:00"
    naive = json.loads(json.dumps(item))
    naive["paper"]["id"] = "2503.00002"
    naive["paper"]["submittedOnDailyAt"] = "2025-03-21T01:00:00"
    result = parse_day(json.dumps([item, naive]).encode(), day=DAY)
    assert result.papers[0].published_at == utc(2025, 3, 20, 17, 0)
    assert result.skipped == [
        Skipped("2503.00002", "submittedOnDailyAt is not an ISO 8601 timestamp with a time zone")
    ]


def test_missing_optional_engagement_defaults():
    item = json.loads(SAMPLE_0600.read_bytes())[0]
    del item["paper"]["upvotes"], item["numComments"], item["paper"]["publishedAt"]
    paper = parse_day(json.dumps([item]).encode(), day=DAY).papers[0]
    assert (paper.upvotes, paper.comments, paper.github_stars, paper.published_at) == (0, 0, None, None)


@pytest.mark.parametrize(
    "raw", [b"<html>Bad gateway</html>", b'{"error": "Invalid date"}', b"\xff\xfe", b"[" * 100_000]
)
def test_a_broken_page_raises_instead_of_being_skipped(raw: bytes):
    with pytest.raises(IngestError):
        parse_day([SAMPLE_0600.read_bytes(), raw], day=DAY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2503.16428", "2503.16428"),
        ("2503.16428v12", "2503.16428"),
        (" 1802.04799v1 ", "1802.04799"),
        ("0704.0001", "0704.0001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("math.GT/0309136v2", "math.GT/0309136"),
        ("cs/0112017", "cs/0112017"),
        ("../../etc", None),
        ("2513.00001", None),  # month 13
        ("2503.164", None),
        ("2503.16428v0", None),
        ("2503.16428/../x", None),
        ("\u0662\u0665\u0660\u0663.\u0661\u0666\u0664\u0662\u0668", None),  # Arabic-Indic digits
        ("HEP-TH/9901001", None),
        ("", None),
    ],
)
def test_normalize_arxiv_id(raw: str, expected: str | None):
    assert normalize_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://github.com/mit-han-lab/x-attention", "https://github.com/mit-han-lab/x-attention"),
        ("https://github.com/google/jaxite/tree/main/jaxite_word", "https://github.com/google/jaxite"),
        ("https://www.github.com/a/b.git", "https://github.com/a/b"),
        ("  https://github.com/a/b  ", "https://github.com/a/b"),
        ("http://github.com/a/b", None),
        ("https://github.com/a", None),
        ("https://github.com/orgs/openai", None),
        ("https://github.com.evil.example/a/b", None),
        ("https://user@github.com/a/b", None),
        ("https://github.com:8443/a/b", None),
        ("https://github.com/a/b c", None),
        ("https://github.com/a/b\r\nX: y", None),
        ("javascript:alert(1)//https://github.com/a/b", None),
        ("https://gitlab.com/a/b", None),
        (None, None),
        (42, None),
    ],
)
def test_github_repo_url(raw: object, expected: str | None):
    assert github_repo_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://circle-lmm.github.io/", "https://circle-lmm.github.io/"),
        ("http://example.org/p?q=1#f", "http://example.org/p?q=1#f"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("https://", None),
        ("//example.org/x", None),
        ("https://github.com@evil.example/", None),
        ("https://example.org/a b", None),
        ("https://example.org:99999/", None),
        ("", None),
        (["https://example.org"], None),
    ],
)
def test_web_url(raw: object, expected: str | None):
    assert web_url(raw) == expected


def test_clean_text():
    assert clean_text("  a\r\n\tb \u2028 c\x00d\x7f \u202eevil\u2066 ") == "a b cd evil"
    assert clean_text("\ud800lone surrogate") == "lone surrogate"
    assert clean_text("Zoë\u200dJoiner") == "Zoë\u200dJoiner"  # ordinary format characters stay


# --- fetch ------------------------------------------------------------------


def serve_pages(items: list[object], *, status: dict[int, int] | None = None):
    """A MockTransport client that serves ``items`` paginated by ``limit``/``p``."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        page, limit = int(request.url.params["p"]), int(request.url.params["limit"])
        if status and page in status:
            return httpx.Response(status[page], json={"error": "Invalid date"})
        return httpx.Response(200, json=items[page * limit : (page + 1) * limit])

    return httpx.Client(transport=httpx.MockTransport(handler)), requests


def test_fetch_day_paginates_until_a_short_page():
    items = json.loads(SAMPLE_0600.read_bytes())
    client, requests = serve_pages(items)
    pages = fetch_day(client, api_url=API, day=DAY, retries=2, page_size=30, sleep=Sleeps())
    assert len(pages) == 2
    assert [len(json.loads(p)) for p in pages] == [30, 15]
    assert [r.url.path for r in requests] == ["/api/daily_papers"] * 2
    assert [dict(r.url.params) for r in requests] == [
        {"date": "2025-03-21", "limit": "30", "p": "0"},
        {"date": "2025-03-21", "limit": "30", "p": "1"},
    ]
    assert parse_day(pages, day=DAY) == parse_day(SAMPLE_0600.read_bytes(), day=DAY)


def test_fetch_day_asks_once_more_after_an_exactly_full_page():
    client, requests = serve_pages(json.loads(SAMPLE_0600.read_bytes()))
    pages = fetch_day(client, api_url=API + "/", day=DAY, retries=0, page_size=45)
    assert [len(json.loads(p)) for p in pages] == [45, 0]
    assert str(requests[0].url).startswith("https://huggingface.co/api/daily_papers?")


def test_fetch_day_stops_when_the_server_ignores_the_page_number():
    items = json.loads(SAMPLE_0600.read_bytes())[:10]
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=items)))
    pages = fetch_day(client, api_url=API, day=DAY, retries=0, page_size=10)
    assert len(pages) == 1


@pytest.mark.parametrize("status", [400, 404])
def test_fetch_day_for_a_day_without_a_list(status: int):
    client, requests = serve_pages([], status={0: status})
    with pytest.raises(DayNotAvailable, match="Hugging Face has no daily papers list for 2025-03-21 yet"):
        fetch_day(client, api_url=API, day=DAY, retries=3, sleep=Sleeps())
    assert len(requests) == 1  # a 400 is an answer, not a reason to retry


def test_fetch_day_400_on_a_later_page_is_not_a_missing_day():
    client, _ = serve_pages(json.loads(SAMPLE_0600.read_bytes()), status={1: 400})
    with pytest.raises(IngestError) as info:
        fetch_day(client, api_url=API, day=DAY, retries=0, page_size=30)
    assert not isinstance(info.value, DayNotAvailable)
    assert "HTTP 400" in str(info.value)


@pytest.mark.parametrize("body", [b'{"papers": []}', b"<html>maintenance</html>"])
def test_fetch_day_rejects_a_body_that_is_not_a_json_list(body: bytes):
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))
    with pytest.raises(IngestError, match="Hugging Face page 0 for 2025-03-21"):
        fetch_day(client, api_url=API, day=DAY, retries=0)


def test_fetch_day_retries_429_then_succeeds():
    calls: list[httpx.Request] = []
    body = SAMPLE_0600.read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "5"})
        return httpx.Response(200, content=body)

    sleep = Sleeps()
    pages = fetch_day(httpx.Client(transport=httpx.MockTransport(handler)), api_url=API, day=DAY, retries=3, sleep=sleep)
    assert pages == [body]
    assert sleep == [5.0]
    assert len(calls) == 2


def test_fetch_day_gives_up_after_the_retries():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    sleep = Sleeps()
    with pytest.raises(IngestError, match="HTTP 503"):
        fetch_day(client, api_url=API, day=DAY, retries=2, sleep=sleep)
    assert len(sleep) == 2


def test_fetch_day_rejects_a_page_size_the_api_refuses():
    with pytest.raises(IngestError, match="page_size"):
        fetch_day(httpx.Client(), api_url=API, day=DAY, retries=0, page_size=101)


# --- the file source --------------------------------------------------------


def test_names_carry_day_and_fetch_time():
    assert day_from_name(SAMPLE_0600) == DAY
    assert fetched_at_from_name(SAMPLE_0600) == utc(2025, 3, 21, 6, 0)
    assert fetched_at_from_name(Path("x/hf_daily_papers_2025-03-21_1800Z.json")) == utc(2025, 3, 21, 18, 0)
    assert fetched_at_from_name(Path("hf_daily_papers_2025-03-21.json")) is None
    assert day_from_name(Path("hf_daily_papers_2025-03-21.json")) == DAY
    assert fetched_at_from_name(Path("hf_daily_papers_2025-03-21_2575Z.json")) is None
    assert day_from_name(Path("hf_daily_papers_2025-02-30_0600Z.json")) is None
    assert day_from_name(Path("papers.json")) is None


def test_sample_files_are_the_bundled_snapshots_in_time_order():
    files = sample_files()
    assert [f.name for f in files] == [
        "hf_daily_papers_2025-03-21_0600Z.json",
        "hf_daily_papers_2025-03-21_1800Z.json",
    ]
    assert all(f.is_file() for f in files)
    assert files[0].read_bytes() == SAMPLE_0600.read_bytes()


def test_parse_file_uses_the_hf_format_with_source_file():
    result = parse_file(SAMPLE_1800)
    assert len(result.papers) == 45
    assert {p.source for p in result.papers} == {"file"}
    assert {p.listed_on for p in result.papers} == {DAY}


def test_parse_file_needs_a_day(tmp_path: Path):
    path = tmp_path / "papers.json"
    path.write_bytes(SAMPLE_0600.read_bytes())
    with pytest.raises(IngestError, match="cannot tell the day"):
        parse_file(path)
    assert len(parse_file(path, day=DAY).papers) == 45


def test_read_file_errors_are_one_line(tmp_path: Path):
    with pytest.raises(IngestError, match=r"^no such file: .*missing\.json$"):
        read_file(tmp_path / "missing.json")
    with pytest.raises(IngestError, match="is a directory"):
        read_file(tmp_path)
    assert read_file(SAMPLE_0600) == SAMPLE_0600.read_bytes()
