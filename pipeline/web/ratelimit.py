"""Per-client-IP limit on subscribe requests (a moving window shared by every worker through its storage)."""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

log = logging.getLogger(__name__)

NAMESPACE = "papermail-subscribe"


class SubscribeLimiter:
    """Counts subscribe requests per client IP, e.g. ``rate="5/hour"`` over ``storage_uri="redis://…"``."""

    def __init__(self, *, rate: str, storage_uri: str, trust_proxy_headers: bool) -> None:
        self._item = parse(rate)  # a typo in the setting fails at start-up, not on the first request
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._trust_proxy_headers = trust_proxy_headers

    def client_ip(self, request: Request) -> str:
        """The address the limit is counted for.

        X-Forwarded-For is believed only when told so: any client can send one,
        and an attacker rotating it would otherwise get a fresh limit each time.
        Even then only its last entry counts: that is the one our own proxy
        appended; anything before it came from the client.
        """
        if self._trust_proxy_headers:
            last = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
            if last:
                return last
        return request.client.host if request.client else "unknown"

    def retry_after(self, request: Request) -> int | None:
        """Count one request: None if it is allowed, else the seconds to wait before the next one."""
        key = self.client_ip(request)
        try:
            if self._limiter.hit(self._item, NAMESPACE, key):
                return None
            reset_at, _remaining = self._limiter.get_window_stats(self._item, NAMESPACE, key)
        except Exception:  # noqa: BLE001
            # A storage outage must not lock everyone out; the per-address limit still holds.
            log.exception("rate limit storage failed; letting the request through")
            return None
        return max(1, math.ceil(reset_at - time.time()))
