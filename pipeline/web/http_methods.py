"""Method semantics the routes do not spell out: HEAD wherever GET works, and a true ``Allow`` on 405.

RFC 9110 §9.3.2: HEAD is GET without the content, with the same status and
header fields, so link checkers and mail scanners that send HEAD see what a
browser would. FastAPI registers a GET route for GET alone; rather than
declare HEAD beside every GET, a HEAD request is run as the GET it stands for
and its body dropped on the way out.

RFC 9110 §15.5.6: a 405 must list the methods the resource supports. Starlette
lists those of the first route whose path matched, though several routes may
share a path (GET /u/{token} and POST /u/{token}).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")  # RFC 9110 §9, RFC 5789


class HeadAsGet:
    """Answers HEAD as GET would, without the body (its Content-Length is kept, as §9.3.2 allows)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: the server keeps its own scope saying HEAD, and sends no body for it either way.
        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route fully matches at the scope's path, HEAD with GET, in a stable order.

    Each method is tried through ``route.matches`` rather than read off the
    routes, because an included router is one route that hides its own.
    """
    routes = list(routes)
    methods = {method for method in METHODS
               if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
