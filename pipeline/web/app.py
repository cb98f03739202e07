"""The app factory: settings in, a FastAPI app out. Nothing here reads the environment."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.compose.links import Links
from pipeline.errors import InvalidLink
from pipeline.service.runner import runner_for
from pipeline.settings import Settings
from pipeline.web import admin, archive, feedback, feeds, health, images, manage, reader_feed, subscribe
from pipeline.web.admin_guard import AdminGuard, failed_token_limit
from pipeline.web.body_limit import BodyLimit
from pipeline.web.error_answers import error_answer, is_api
from pipeline.web.http_methods import HeadAsGet, allowed_methods
from pipeline.web.mail import SendConfirmation, default_sender
from pipeline.web.openapi_docs import ADMIN_ANSWERS, SITE_ANSWERS, without_site_validation_answers
from pipeline.web.pages import NO_STORE, SECURITY_HEADERS, message_page
from pipeline.web.ratelimit import subscribe_limit

log = logging.getLogger(__name__)


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
    app = FastAPI(title=settings.list_name, docs_url=None, redoc_url=None,  # the docs pages load outside JavaScript
                  openapi_url="/openapi.json" if settings.serves_openapi else None)  # a map of the admin API
    app.state.settings = settings
    app.state.links = Links(base_url=settings.base_url, secret_key=settings.secret_key)
    app.state.runner = runner_for(settings)  # in this process, or queued on the workers: chosen once, here
    app.state.send_confirmation = send_confirmation or default_sender(app.state.runner)
    app.state.limiter = subscribe_limit(rate=settings.subscribe_rate_limit, storage_uri=settings.rate_limit_storage,
                                        trust_proxy_headers=settings.trust_proxy_headers)
    for module in (subscribe, manage, feedback, archive, feeds, images, reader_feed, health):
        app.include_router(module.router, responses=SITE_ANSWERS)
    app.include_router(admin.router, responses=ADMIN_ANSWERS)
    fastapi_schema = app.openapi
    app.openapi = lambda: without_site_validation_answers(fastapi_schema())  # type: ignore[method-assign]
    _add_error_pages(app)
    # The last added runs first: headers on every answer, HEAD as GET, the admin token, then the body cap,
    # so a request without the token is refused before its body is read.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AdminGuard, token=settings.admin_token, limiter=failed_token_limit(
        rate=settings.admin_auth_failure_limit, storage_uri=settings.rate_limit_storage,
        trust_proxy_headers=settings.trust_proxy_headers))
    app.add_middleware(HeadAsGet)
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
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 §15.5.6: Allow lists what the resource supports, across every route at this path.
            headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
        return error_answer(request, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request.scope):  # FastAPI's JSON 422, as the schema documents for the API
            return await request_validation_exception_handler(request, exc)
        return message_page(request, status_code=400, title="That did not look right",
                            text="The form was incomplete or not in a shape this page understands. "
                                 "Please go back and try again.")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        try:
            return error_answer(request, status_code=500)
        except Exception:  # noqa: BLE001  (the templates themselves may be what broke)
            return HTMLResponse("<!doctype html><title>Error</title><h1>Something went wrong</h1>", status_code=500,
                                headers=SECURITY_HEADERS)
