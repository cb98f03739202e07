"""A send rate shared by every worker: moving windows in the rate-limit storage (Redis in production).

Celery's own ``rate_limit`` counts per worker process, so two workers would
send twice as fast as the provider allows; the window here is one for all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

NAMESPACE = "papermail-send"


def rate_items(*, per_second: float, per_hour: int) -> list[RateLimitItem]:
    items: list[RateLimitItem] = []
    if per_second >= 1:
        items.append(RateLimitItemPerSecond(int(per_second)))
    elif per_second > 0:  # below one a second, count per minute
        items.append(RateLimitItemPerMinute(max(1, round(per_second * 60))))
    if per_hour > 0:
        items.append(RateLimitItemPerHour(per_hour))
    return items


class Pacer:
    """``wait()`` returns when one more message may go out under every configured window."""

    def __init__(self, *, items: list[RateLimitItem], storage_uri: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._items = items
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._sleep = sleep

    def wait(self, between: Callable[[], None] | None = None) -> None:
        """Block until a slot is free; ``between`` is called after each pause of at most a second."""
        for item in self._items:
            while not self._limiter.hit(item, NAMESPACE):
                reset_at, _ = self._limiter.get_window_stats(item, NAMESPACE)
                self._sleep(min(max(reset_at - time.time(), 0.005), 1.0))
                if between is not None:
                    between()


def pacer_for(*, per_second: float, per_hour: int, storage_uri: str) -> Pacer | None:
    items = rate_items(per_second=per_second, per_hour=per_hour)
    return Pacer(items=items, storage_uri=storage_uri) if items else None
