"""The answer to a request that went wrong: a JSON body for the admin API, a page for everything else.

Used by the exception handlers and by the middlewares that answer before any
route runs (body limit, admin token), so every error of one status looks alike.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import get_route_path
from starlette.types import Scope

from pipeline.web.pages import NO_STORE, message_page

API_PREFIX = "/admin"

STATUS_TEXT = {
    400: ("That did not look right", "This request could not be understood."),
    401: ("Not authorised", "This needs a valid token."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "That request was larger than this site accepts."),
    429: ("Too many requests", "There were too many requests from your network. Please try again later."),
    500: ("Something went wrong on our side", "Nothing you did caused this. Please try again in a few minutes."),
}
FALLBACK_TEXT = ("Something went wrong", "This request could not be handled.")


def is_api(scope: Scope) -> bool:
    """Whether the request is for the admin API (answered in JSON) rather than the site."""
    path = get_route_path(scope)
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def error_answer(request: Request, *, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """``{"error": …}`` under /admin, else the site's one-sentence page; neither is ever cached."""
    title, text = STATUS_TEXT.get(status_code, FALLBACK_TEXT)
    all_headers = {**NO_STORE, **(headers or {})}
    if is_api(request.scope):
        return JSONResponse({"error": text}, status_code=status_code, headers=all_headers)
    return message_page(request, status_code=status_code, title=title, text=text, headers=all_headers)
