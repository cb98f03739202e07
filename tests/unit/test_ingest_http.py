"""get_with_retries: what is retried, how long it waits, and what it gives up with."""

import time
from collections.abc import Iterator

import httpx
import pytest

from pipeline.errors import IngestError
from pipeline.ingest.http import MAX_RETRY_AFTER, get_with_retries

URL = "https://papers.example/api/daily_papers"
Step = httpx.Response | Exception


def scripted(steps: list[Step]) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose transport plays ``steps`` in order (an exception is raised)."""
    seen: list[httpx.Request] = []
    remaining: Iterator[Step] = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = next(remaining)
        if isinstance(step, Exception):
            raise step
        return step

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ok() -> httpx.Response:
    return httpx.Response(200, json=[])


def test_success_first_time_does_not_sleep_and_sends_params():
    client, seen = scripted([ok()])
    sleep = Sleeps()
    response = get_with_retries(client, URL, params={"date": "2025-03-21", "p": 0}, retries=3, sleep=sleep)
    assert response.status_code == 200
    assert sleep == []
    assert len(seen) == 1
    assert dict(seen[0].url.params) == {"date": "2025-03-21", "p": "0"}


def test_429_with_retry_after_waits_exactly_that_long():
    client, seen = scripted([httpx.Response(429, headers={"Retry-After": "7"}), ok()])
    sleep = Sleeps()
    assert get_with_retries(client, URL, retries=3, sleep=sleep).status_code == 200
    assert sleep == [7.0]
    assert len(seen) == 2


def test_retry_after_is_capped_at_sixty_seconds():
    client, _ = scripted([httpx.Response(503, headers={"Retry-After": "3600"}), ok()])
    sleep = Sleeps()
    get_with_retries(client, URL, retries=1, sleep=sleep)
    assert sleep == [MAX_RETRY_AFTER] == [60.0]


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "-5", "soon", "nan"])
def test_unusable_retry_after_falls_back_to_backoff(value: str):
    client, _ = scripted([httpx.Response(429, headers={"Retry-After": value}), ok()])
    sleep = Sleeps()
    get_with_retries(client, URL, retries=1, backoff=2.0, sleep=sleep)
    assert len(sleep) == 1
    assert 2.0 <= sleep[0] <= 3.0


def test_503_twice_then_200_backs_off_exponentially_with_jitter():
    client, seen = scripted([httpx.Response(503), httpx.Response(502), ok()])
    sleep = Sleeps()
    assert get_with_retries(client, URL, retries=4, backoff=1.0, sleep=sleep).status_code == 200
    assert len(seen) == 3
    assert len(sleep) == 2
    assert 1.0 <= sleep[0] <= 1.5
    assert 2.0 <= sleep[1] <= 3.0


def test_jitter_varies_the_delay():
    delays = set()
    for _ in range(20):
        client, _ = scripted([httpx.Response(500), ok()])
        sleep = Sleeps()
        get_with_retries(client, URL, retries=1, sleep=sleep)
        delays.add(sleep[0])
    assert len(delays) > 1


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_timeouts_and_transport_errors_are_retried(error: Exception):
    client, seen = scripted([error, ok()])
    sleep = Sleeps()
    assert get_with_retries(client, URL, retries=2, sleep=sleep).status_code == 200
    assert len(seen) == 2
    assert len(sleep) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_are_returned_to_the_caller_without_retry(status: int):
    client, seen = scripted([httpx.Response(status)])
    sleep = Sleeps()
    assert get_with_retries(client, URL, retries=3, sleep=sleep).status_code == status
    assert len(seen) == 1
    assert sleep == []


def test_exhausted_retries_raise_one_line_error_naming_url_and_last_status():
    client, seen = scripted([httpx.Response(503)] * 2 + [httpx.Response(500)])
    sleep = Sleeps()
    with pytest.raises(IngestError) as info:
        get_with_retries(client, URL, params={"date": "2025-03-21"}, retries=2, sleep=sleep)
    message = str(info.value)
    assert "\n" not in message
    assert "https://papers.example/api/daily_papers?date=2025-03-21" in message
    assert "HTTP 500" in message
    assert "3 attempts" in message
    assert len(seen) == 3
    assert len(sleep) == 2  # no pointless wait after the last attempt


def test_exhausted_by_timeouts_names_the_error():
    client, _ = scripted([httpx.ReadTimeout("timed out\nwaiting")] * 2)
    with pytest.raises(IngestError, match=r"ReadTimeout: timed out waiting") as info:
        get_with_retries(client, URL, retries=1, sleep=Sleeps())
    assert "\n" not in str(info.value)


def test_zero_retries_means_one_attempt():
    client, seen = scripted([httpx.Response(503)])
    sleep = Sleeps()
    with pytest.raises(IngestError, match="1 attempts"):
        get_with_retries(client, URL, retries=0, sleep=sleep)
    assert len(seen) == 1
    assert sleep == []


def test_unsupported_protocol_fails_at_once():
    client, seen = scripted([httpx.UnsupportedProtocol("no ftp here"), ok()])
    sleep = Sleeps()
    with pytest.raises(IngestError, match="no ftp here"):
        get_with_retries(client, URL, retries=3, sleep=sleep)
    assert len(seen) == 1
    assert sleep == []


def test_default_sleep_really_waits():
    assert get_with_retries.__kwdefaults__["sleep"] is time.sleep
