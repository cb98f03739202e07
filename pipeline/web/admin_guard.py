"""The admin API's door: the bearer token is checked before routing and before a byte of the body is read.

Without ADMIN_TOKEN every /admin path is a 404, as if the API did not exist. A
wrong or missing token is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750
§3). A client (counted as the subscribe limit counts it, per IPv4 address or
IPv6 /64) that sends ADMIN_AUTH_FAILURE_LIMIT wrong tokens within its window
gets 429 with Retry-After for every /admin request, the right token included,
until the window has moved past them: guessing is slowed to that rate whatever
the guesser does.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.web.error_answers import error_answer, is_api
from pipeline.web.ratelimit import ClientLimit

log = logging.getLogger(__name__)

NAMESPACE = "papermail-admin-auth"


def token_matches(authorization: str | None, *, token: str) -> bool:
    """Whether an Authorization header carries ``token`` as a Bearer credential (RFC 6750 §2.1), in constant time."""
    scheme, _, credentials = (authorization or "").partition(" ")
    # The scheme is case-insensitive (RFC 9110 §11.1); compare_digest keeps the token's bytes from leaking by timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


def failed_token_limit(*, rate: str, storage_uri: str, trust_proxy_headers: bool) -> ClientLimit:
    """Wrong admin tokens per client, e.g. ``rate="10/15 minutes"``. When its storage fails the token
    itself still has to be right, so operators are not locked out by an outage."""
    return ClientLimit(namespace=NAMESPACE, rate=rate, storage_uri=storage_uri, trust_proxy_headers=trust_proxy_headers)


class AdminGuard:
    """Lets a request through to /admin only with the right bearer token and while its client is not blocked."""

    def __init__(self, app: ASGIApp, *, token: str | None, limiter: ClientLimit) -> None:
        self.app = app
        self.token = token
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if not self.token:
            response = error_answer(request, status_code=404)
        elif (wait := self.limiter.retry_after(request, count=False)) is not None:
            response = error_answer(request, status_code=429, headers={"Retry-After": str(wait)})
        elif token_matches(request.headers.get("authorization"), token=self.token):
            await self.app(scope, receive, send)
            return
        else:
            if request.headers.get("authorization"):  # a missing header guesses nothing
                log.warning("wrong admin token from %s", request.client.host if request.client else "unknown")
                self.limiter.count(request)
            response = error_answer(request, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
