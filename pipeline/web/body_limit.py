"""A cap on request bodies for the whole site and API, enforced before any route runs.

No request here needs more than a few hundred bytes (a form with an address,
a resend with a list of them), and a body a route never reads would otherwise
still be taken in. A declared Content-Length above the cap is answered 413 at
once, without reading a byte; a body without one (chunked) is read up to the
cap and answered 413 as soon as it goes over. Only then does the route run, on
the buffered body, so an oversized request has no effect at all: the
unsubscribe route, which never reads its body, is not run and then refused.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.web.error_answers import error_answer

TOO_LARGE = 413  # RFC 9110 §15.5.14 Content Too Large


class BodyLimit:
    """Answers 413 to any request whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client went away; the route sees that as it would have
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The rest of the body is left unread: the server discards it or closes the connection.
        response = error_answer(Request(scope, receive), status_code=TOO_LARGE, headers={"Connection": "close"})
        await response(scope, receive, send)
