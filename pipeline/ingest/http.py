"""GET with retries: the one place that decides what is worth asking again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from pipeline.errors import IngestError

MAX_RETRY_AFTER = 60.0  # a server asking for longer is not worth blocking the daily run for


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait, capped; None when absent or not a number.

    The HTTP-date form (RFC 9110 §10.2.3) would need a clock; it falls back to backoff.
    """
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a usable answer
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _backoff(backoff: float, attempt: int) -> float:
    # Up to +50 % jitter so workers that failed together do not retry together.
    base = backoff * 2**attempt
    return min(base * (1 + random.random() / 2), MAX_RETRY_AFTER)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def get_with_retries(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    retries: int,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """GET ``url``, retrying 429, 5xx, timeouts and transport errors up to ``retries`` times.

    Waits ``backoff * 2**attempt`` seconds plus jitter between tries, or the server's
    ``Retry-After`` (seconds, capped at 60 s). Any other response, including 4xx, is
    returned for the caller to judge. Raises ``IngestError`` once the retries are spent.
    """
    shown = str(httpx.URL(url, params=params)) if params else url
    last = "no attempt made"
    for attempt in range(max(retries, 0) + 1):
        delay: float | None = None
        try:
            response = client.get(url, params=params)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            # A bad URL fails the same way every time: retrying only delays the message.
            raise IngestError(f"cannot GET {shown}: {_one_line(str(exc))}") from exc
        except httpx.TransportError as exc:  # includes every TimeoutException
            last = _one_line(f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            if not _retryable(response.status_code):
                return response
            last = f"HTTP {response.status_code}"
            delay = _retry_after(response)
            response.close()
        if attempt < retries:
            sleep(delay if delay is not None else _backoff(backoff, attempt))
    raise IngestError(f"GET {shown} failed after {max(retries, 0) + 1} attempts; last: {last}")
