"""Limits per client IP (moving windows shared by every worker through their storage): subscribe requests,
wrong admin tokens."""

from __future__ import annotations

import ipaddress
import logging
import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

log = logging.getLogger(__name__)

NAMESPACE = "papermail-subscribe"
# A host gets a whole /64 (RFC 4291 §2.5.1 interface ids) and makes up new addresses in it at will
# (RFC 8981 temporary addresses): counting per address would give one client endless fresh limits.
IPV6_SITE_PREFIX = 64


def client_key(request: Request, *, trust_proxy_headers: bool) -> str:
    """The client a limit is counted for: its IPv4 address, or the /64 its IPv6 address is in.

    X-Forwarded-For is believed only when told so: any client can send one,
    and an attacker rotating it would otherwise get a fresh limit each time.
    Even then only its last entry counts: that is the one our own proxy
    appended; anything before it came from the client.
    """
    host = request.client.host if request.client else "unknown"
    if trust_proxy_headers:
        host = request.headers.get("x-forwarded-for", "").split(",")[-1].strip() or host
    return network_of(host)


def network_of(host: str) -> str:
    """``host`` as counted: an IPv4 address as is (also inside ``::ffff:``), an IPv6 one as its /64.

    Anything that is not an address (a test client's name, say) is counted as given.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # RFC 4291 §2.5.5.2: an IPv4 client seen through a dual-stack socket
            return str(address.ipv4_mapped)
        prefix = int(address) >> (128 - IPV6_SITE_PREFIX) << (128 - IPV6_SITE_PREFIX)
        return str(ipaddress.IPv6Network((prefix, IPV6_SITE_PREFIX)))
    return str(address)


class ClientLimit:
    """A moving-window limit per client, e.g. ``rate="5/hour"`` over ``storage_uri="redis://…"``.

    A storage outage never locks anyone out (it is logged and the request goes through): each
    limit guards something that still has its own check behind it.
    """

    def __init__(self, *, namespace: str, rate: str, storage_uri: str, trust_proxy_headers: bool) -> None:
        self._namespace = namespace
        self._item = parse(rate)  # a typo in the setting fails at start-up, not on the first request
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._trust_proxy_headers = trust_proxy_headers

    def client_ip(self, request: Request) -> str:
        """The client the limit is counted for: see :func:`client_key`."""
        return client_key(request, trust_proxy_headers=self._trust_proxy_headers)

    def retry_after(self, request: Request, *, count: bool = True) -> int | None:
        """None if the client is within the limit, else the seconds before it is again.

        ``count``: this request is one of those limited (False only looks).
        """
        key = self.client_ip(request)
        try:
            check = self._limiter.hit if count else self._limiter.test
            if check(self._item, self._namespace, key):
                return None
            reset_at, _remaining = self._limiter.get_window_stats(self._item, self._namespace, key)
        except Exception:  # noqa: BLE001
            log.exception("%s: rate limit storage failed; letting the request through", self._namespace)
            return None
        return max(1, math.ceil(reset_at - time.time()))

    def count(self, request: Request) -> None:
        """Count one request against the client, without asking whether it is within the limit."""
        try:
            self._limiter.hit(self._item, self._namespace, self.client_ip(request))
        except Exception:  # noqa: BLE001
            log.exception("%s: rate limit storage failed; the request was not counted", self._namespace)


def subscribe_limit(*, rate: str, storage_uri: str, trust_proxy_headers: bool) -> ClientLimit:
    """Subscribe requests per client; the per-address limit (one confirmation a day) still holds behind it."""
    return ClientLimit(namespace=NAMESPACE, rate=rate, storage_uri=storage_uri, trust_proxy_headers=trust_proxy_headers)
