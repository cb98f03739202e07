"""arXiv Atom API: parse_feed/parse_feeds (pure) and fetch (MockTransport)."""

from datetime import UTC, date, datetime

import httpx
import pytest

from pipeline.errors import ConfigError, IngestError
from pipeline.ingest import fetch_categories, fetch_category, parse_feed, parse_feeds
from pipeline.ingest.records import Skipped
from tests.support.paths import FIXTURES

LG = (FIXTURES / "arxiv_cs_LG.atom").read_bytes()
CL = (FIXTURES / "arxiv_cs_CL.atom").read_bytes()
DAY = date(2025, 3, 21)
API = "http://export.arxiv.org/api/query"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def feed(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        + "".join(entries)
        + "</feed>"
    ).encode()


# --- parse ------------------------------------------------------------------


def test_feed_counts_and_skip_reasons():
    result = parse_feed(LG, day=DAY)
    assert [p.arxiv_id for p in result.papers] == ["2503.16428", "2503.16419", "2503.16402"]
    # 2503.15212 was submitted two days before: out of the window, not an error.
    assert result.skipped == [Skipped("#3", "missing id"), Skipped("2503.16365", "empty title")]


def test_entry_field_mapping():
    papers = {p.arxiv_id: p for p in parse_feed(LG, day=DAY).papers}
    x = papers["2503.16428"]
    assert x.title == "XAttention: Block Sparse Attention with Antidiagonal Scoring"
    assert x.abstract.startswith("Long-Context Transformer Models (LCTMs) are vital for real-world applications but")
    assert x.abstract.endswith("long-context inference in Transformers models using sparse attention.")
    assert "\n" not in x.abstract and "  " not in x.abstract
    assert x.authors == ("Ruyi Xu", "Guangxuan Xiao", "Haofeng Huang", "Junxian Guo", "Song Han")
    assert x.published_at == datetime(2025, 3, 20, 17, 59, 59, tzinfo=UTC)
    assert (x.source, x.listed_on) == ("arxiv", DAY)
    assert (x.upvotes, x.comments, x.github_stars) == (0, 0, None)
    assert x.github_repo == "https://github.com/mit-han-lab/x-attention"  # from arxiv:comment, final "." dropped
    assert x.summary is None and x.keywords == ()

    wrapped = papers["2503.16419"]  # v2 in the feed: the id carries no version
    assert wrapped.title == "Stop Overthinking: A Survey on Efficient Reasoning for Large Language Models"
    assert wrapped.github_repo == "https://github.com/Eclipsess/Awesome-Efficient-Reasoning-LLMs"
    assert papers["2503.16402"].github_repo is None


def test_window_is_the_day_and_the_day_before():
    assert [p.arxiv_id for p in parse_feed(LG, day=date(2025, 3, 20)).papers] == [
        "2503.16428",
        "2503.16419",
        "2503.16402",
        "2503.15212",
    ]
    assert parse_feed(LG, day=date(2025, 3, 23)).papers == []
    assert [p.arxiv_id for p in parse_feed(CL, day=date(2025, 3, 22)).papers] == ["2503.16410"]


def test_parse_feeds_merges_and_drops_cross_listings_silently():
    result = parse_feeds([LG, CL], day=DAY)
    assert [p.arxiv_id for p in result.papers] == ["2503.16428", "2503.16419", "2503.16402", "2503.16410"]
    assert result.skipped == [Skipped("#3", "missing id"), Skipped("2503.16365", "empty title")]
    assert parse_feeds([], day=DAY).papers == []


def test_duplicate_within_one_feed_is_reported():
    entry = (
        "<entry><id>http://arxiv.org/abs/2503.16410v{v}</id><published>2025-03-21T01:12:09Z</published>"
        "<title>T</title><summary>S</summary></entry>"
    )
    result = parse_feed(feed(entry.format(v=1), entry.format(v=2)), day=DAY)
    assert len(result.papers) == 1
    assert result.skipped == [Skipped("2503.16410", "duplicate id")]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("<id>http://arxiv.org/abs/../../etc</id><published>2025-03-21T00:00:00Z</published>",
         Skipped("http://arxiv.org/abs/../../etc", "invalid arXiv id")),
        ("<id>https://evil.example/abs/2503.00001v1</id><published>2025-03-21T00:00:00Z</published>",
         Skipped("https://evil.example/abs/2503.00001v1", "invalid arXiv id")),
        ("<id>http://arxiv.org/abs/2503.00001v1</id>", Skipped("2503.00001", "missing published")),
        ("<id>http://arxiv.org/abs/2503.00001v1</id><published>March 21</published>",
         Skipped("2503.00001", "published is not an ISO 8601 timestamp with a time zone")),
        ("<id>http://arxiv.org/abs/2503.00001v1</id><published>2025-03-21T00:00:00Z</published><summary>S</summary>",
         Skipped("2503.00001", "missing title")),
        ("<id>http://arxiv.org/abs/2503.00001v1</id><published>2025-03-21T00:00:00Z</published><title>T</title>",
         Skipped("2503.00001", "missing summary")),
    ],
)
def test_malformed_entries_are_skipped_with_reasons(entry: str, expected: Skipped):
    result = parse_feed(feed(f"<entry>{entry}</entry>"), day=DAY)
    assert result.papers == []
    assert result.skipped == [expected]


def test_https_ids_and_old_style_ids_are_accepted():
    entries = [
        "<entry><id>https://arxiv.org/abs/2503.00001v3</id><published>2025-03-21T00:00:00Z</published>"
        "<title>A</title><summary>S</summary></entry>",
        "<entry><id>http://arxiv.org/abs/hep-th/9901001v1</id><published>2025-03-21T00:00:00Z</published>"
        "<title>B</title><summary>S</summary></entry>",
    ]
    assert [p.arxiv_id for p in parse_feed(feed(*entries), day=DAY).papers] == ["2503.00001", "hep-th/9901001"]


def test_hostile_text_is_collapsed_not_skipped():
    entry = (
        "<entry><id>http://arxiv.org/abs/2503.00001v1</id><published>2025-03-21T00:00:00Z</published>"
        "<title>&lt;script&gt;alert(1)&lt;/script&gt;&#13;\nBcc: victim@example.org</title>"
        "<summary>S</summary><author><name>  A\tB </name></author><author><name> </name></author></entry>"
    )
    paper = parse_feed(feed(entry), day=DAY).papers[0]
    assert paper.title == "<script>alert(1)</script> Bcc: victim@example.org"
    assert paper.authors == ("A B",)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"<feed><entry>", "not valid XML"),
        (b"", "not valid XML"),
        (b"<rss version='2.0'><channel/></rss>", "not an Atom feed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaa">]>'
            b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&a;</title></feed>',
            "DTD",
        ),
    ],
)
def test_unreadable_documents_raise(raw: bytes, match: str):
    with pytest.raises(IngestError, match=match):
        parse_feed(raw, day=DAY)


def test_arxiv_error_feed_raises_with_its_message():
    error = feed(
        "<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345v1</id>"
        "<title>Error</title><summary>incorrect id format for 1234.12345v1</summary></entry>"
    )
    with pytest.raises(IngestError, match="arXiv API error: incorrect id format for 1234.12345v1"):
        parse_feed(error, day=DAY)


def test_empty_feed_is_empty():
    assert parse_feed(feed(), day=DAY).papers == []


# --- fetch ------------------------------------------------------------------


def serving(responses: dict[str, bytes]):
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        category = request.url.params["search_query"].split()[0].removeprefix("cat:")
        return httpx.Response(200, content=responses[category], headers={"Content-Type": "application/atom+xml"})

    return httpx.Client(transport=httpx.MockTransport(handler)), requests


def test_fetch_category_query():
    client, requests = serving({"cs.LG": LG})
    assert fetch_category(client, api_url=API, category="cs.LG", retries=0) == LG
    assert len(requests) == 1
    assert requests[0].url.host == "export.arxiv.org" and requests[0].url.path == "/api/query"
    assert dict(requests[0].url.params) == {
        "search_query": "cat:cs.LG",
        "sortBy": "submittedDate",
        "sortOrder": "descending",
        "start": "0",
        "max_results": "100",
    }


def test_fetch_category_for_a_day_narrows_to_the_window():
    client, requests = serving({"cs.LG": LG})
    fetch_category(client, api_url=API, category="cs.LG", max_results=50, retries=0, day=DAY)
    params = requests[0].url.params
    assert params["search_query"] == "cat:cs.LG AND submittedDate:[202503200000 TO 202503212359]"
    assert params["max_results"] == "50"


def test_fetch_categories_one_request_each_with_a_pause_between():
    client, requests = serving({"cs.LG": LG, "cs.CL": CL, "cs.AI": feed()})
    sleep = Sleeps()
    raws = fetch_categories(
        client, api_url=API, categories=["cs.LG", "cs.CL", "cs.AI", "cs.LG"], day=DAY, retries=0, sleep=sleep
    )
    assert [r.url.params["search_query"].split()[0] for r in requests] == ["cat:cs.LG", "cat:cs.CL", "cat:cs.AI"]
    assert sleep == [3.0, 3.0]  # between requests, not before the first or after the last
    assert raws[:2] == [LG, CL]
    assert [p.arxiv_id for p in parse_feeds(raws, day=DAY).papers] == [
        "2503.16428",
        "2503.16419",
        "2503.16402",
        "2503.16410",
    ]


def test_fetch_retries_503_then_pauses_for_the_next_category():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503, headers={"Retry-After": "4"})
        return httpx.Response(200, content=LG)

    sleep = Sleeps()
    fetch_categories(
        httpx.Client(transport=httpx.MockTransport(handler)),
        api_url=API,
        categories=["cs.LG", "cs.CL"],
        day=DAY,
        retries=2,
        pause=3.5,
        sleep=sleep,
    )
    assert len(calls) == 3
    assert sleep == [4.0, 3.5]


@pytest.mark.parametrize("category", ["cs.LG OR all:x", "cs.LG&max_results=1", "", "cat:cs.LG"])
def test_a_category_that_is_not_one_is_refused_before_any_request(category: str):
    client, requests = serving({})
    with pytest.raises(ConfigError):
        fetch_category(client, api_url=API, category=category, retries=0)
    assert requests == []


@pytest.mark.parametrize("category", ["cs.LG", "hep-th", "q-bio.NC", "stat.ML", "astro-ph.CO"])
def test_real_category_names_are_accepted(category: str):
    client, requests = serving({category: LG})
    fetch_category(client, api_url=API, category=category, retries=0)
    assert len(requests) == 1


def test_fetch_category_http_error_is_an_ingest_error():
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, content=b"bad query")))
    with pytest.raises(IngestError, match="arXiv answered HTTP 400 for cs.LG"):
        fetch_category(client, api_url=API, category="cs.LG", retries=3, sleep=Sleeps())
