"""The app factory: settings in, a FastAPI app out. Nothing here reads the environment."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.settings import Settings
from pipeline.web import admin, archive, health, manage, subscribe
from pipeline.web.deps import InvalidLink
from pipeline.web.mail import SendConfirmation, default_sender
from pipeline.web.pages import NO_STORE, SECURITY_HEADERS, message_page
from pipeline.web.ratelimit import SubscribeLimiter

log = logging.getLogger(__name__)

_STATUS_TEXT = {
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
}


class SecurityHeaders:
    """Adds the security headers to every answer; ``no-store`` unless the route chose its own caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = NO_STORE["Cache-Control"]
                del headers["set-cookie"]  # the site keeps no state in the browser
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings, *, send_confirmation: SendConfirmation | None = None) -> FastAPI:
    """The site for ``settings``. ``send_confirmation(subscriber_id)`` mails the double opt-in link.

    By default it is a Celery task when ``settings.broker_url`` is set, else the
    mail step run in-process after the page has been sent.
    """
    app = FastAPI(title=settings.list_name, docs_url=None, redoc_url=None)  # the docs pages load outside JavaScript
    app.state.settings = settings
    app.state.send_confirmation = send_confirmation or default_sender(settings)
    app.state.limiter = SubscribeLimiter(rate=settings.subscribe_rate_limit, storage_uri=settings.rate_limit_storage,
                                         trust_proxy_headers=settings.trust_proxy_headers)
    for module in (subscribe, manage, archive, health, admin):
        app.include_router(module.router)
    _add_error_pages(app)
    app.add_middleware(SecurityHeaders)
    return app


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(InvalidLink)
    async def invalid_link(request: Request, exc: InvalidLink) -> HTMLResponse:
        # Tampered, expired, another purpose or nobody: the same words, so a token reveals nothing.
        return message_page(request, status_code=400, title="This link is not valid or has expired",
                            text="Nothing was changed. Use the link in a more recent email, or subscribe again "
                                 "from the home page.", headers=NO_STORE)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        title, text = _STATUS_TEXT.get(exc.status_code, ("Something went wrong", "This request could not be handled."))
        return message_page(request, status_code=exc.status_code, title=title, text=text, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return message_page(request, status_code=400, title="That did not look right",
                            text="The form was incomplete or not in a shape this page understands. "
                                 "Please go back and try again.")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        try:
            return message_page(request, status_code=500, title="Something went wrong on our side",
                                text="Nothing you did caused this. Please try again in a few minutes.")
        except Exception:  # noqa: BLE001  (the templates themselves may be what broke)
            return HTMLResponse("<!doctype html><title>Error</title><h1>Something went wrong</h1>", status_code=500,
                                headers=SECURITY_HEADERS)
