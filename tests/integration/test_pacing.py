"""The shared send rate: every worker draws from one moving window in Redis."""

from __future__ import annotations

import time

import redis

from pipeline.delivery.pacing import Pacer, rate_items


def test_rate_items():
    assert [str(i) for i in rate_items(per_second=20, per_hour=0)] == ["20 per 1 second"]
    assert [str(i) for i in rate_items(per_second=0.5, per_hour=1000)] == ["30 per 1 minute", "1000 per 1 hour"]
    assert rate_items(per_second=0, per_hour=0) == []


def test_two_workers_share_one_window_in_redis(redis_url):
    db = redis_url
    items = rate_items(per_second=5, per_hour=0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    workers = [Pacer(items=items, storage_uri=db, sleep=sleep) for _ in range(2)]
    passed: list[float] = []
    for i in range(12):  # the two take turns, as two processes sending at once would
        workers[i % 2].wait()
        passed.append(time.monotonic())
    # Never more than five messages in any one-second window, counted across both workers.
    assert all(passed[i + 5] - passed[i] >= 0.95 for i in range(len(passed) - 5)), passed
    assert slept, "the sixth message had to wait"


def test_a_wait_pauses_a_second_at_most_and_calls_back_between_pauses(redis_url):
    """A sender waiting for the hourly window keeps its claim's lease alive through the callback."""
    slept: list[float] = []
    calls: list[float] = []
    pacer = Pacer(items=rate_items(per_second=0, per_hour=1), storage_uri=redis_url, sleep=slept.append)
    pacer.wait()  # the hour's one message
    limiter_hits = iter(range(3))

    def between() -> None:
        calls.append(time.monotonic())
        if next(limiter_hits, None) is None:  # after three pauses, pretend the hour went by
            redis.Redis.from_url(redis_url).flushdb()

    pacer.wait(between=between)
    assert len(slept) == len(calls) == 4 and all(0 < s <= 1.0 for s in slept)
