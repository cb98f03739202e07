"""What the OpenAPI schema says each route can answer, so that it says what the site really does.

The decorators name the answers particular to their route (``responses=``);
:data:`SITE_ANSWERS` and :data:`ADMIN_ANSWERS` hold the ones the middlewares
and error handlers give on every route of the site or of the admin API. The
site answers a malformed request with its 400 page, never FastAPI's 422, so
:func:`without_site_validation_answers` takes that one out of the site's
operations; the admin API keeps it, in FastAPI's JSON shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pipeline.web.error_answers import API_PREFIX

Answers = dict[int | str, dict[str, Any]]

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait (RFC 9110 §10.2.3)",
                               "schema": {"type": "integer", "minimum": 1}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "always `Bearer` (RFC 6750 §3)", "schema": {"type": "string"}}}


class AdminError(BaseModel):
    """The body of every admin API answer that is not a success, except a validation error (422)."""

    error: str


def page(description: str, **extra: Any) -> dict[str, Any]:
    """An answer that is an HTML page."""
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}, **extra}


def admin_error(description: str, **extra: Any) -> dict[str, Any]:
    """An admin API answer with an :class:`AdminError` body."""
    return {"description": description, "model": AdminError, **extra}


SITE_ANSWERS: Answers = {
    413: page("The request body is larger than MAX_BODY_BYTES; nothing was done"),
    500: page("Something failed on the server's side"),
}
ADMIN_ANSWERS: Answers = {
    401: admin_error("No bearer token, or not ADMIN_TOKEN", headers=WWW_AUTHENTICATE),
    404: admin_error("ADMIN_TOKEN is unset (the API is off), or there is no such issue"),
    413: admin_error("The request body is larger than MAX_BODY_BYTES; nothing was done"),
    429: admin_error("Too many wrong tokens from this client lately (ADMIN_AUTH_FAILURE_LIMIT); even the right "
                     "one is refused until Retry-After", headers=RETRY_AFTER),
    500: admin_error("Something failed on the server's side"),
}

INVALID_LINK: Answers = {
    400: page("The link's token is tampered with, expired, of another purpose or names nobody: one page for all"),
}
SUBSCRIBE: Answers = {
    400: page("No address, or not a valid one: the form again, with what went wrong"),
    429: page("Too many subscribe requests from this client lately (SUBSCRIBE_RATE_LIMIT)", headers=RETRY_AFTER),
}
PREFERENCES_SAVE: Answers = {
    400: page("The token is not valid (the generic page), or a field is out of range (the form again)"),
}
INTERESTS_CHANGE: Answers = {
    400: page("The token is not valid (the generic page), or the interest is refused: the page again, with why"),
}
FEEDBACK: Answers = {
    400: page("The token is not valid (the generic page), or `paper` is not an arXiv id or `vote` not more or less"),
    404: page("No stored paper has that arXiv id: nothing was recorded"),
}
IMAGE: Answers = {
    200: {"description": "The image (JPEG); cached for good, since its name is the digest of its bytes",
          "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "The client's copy (If-None-Match) is this one"},
    404: page("No stored image has that name"),
}
ARCHIVED_ISSUE: Answers = {
    404: page("No issue of that date (YYYY-MM-DD) and edition has gone out"),
}
ARCHIVE_LIST: Answers = {
    400: page("`page` is not a whole number from 1 to 10000"),
    404: page("There are fewer pages of issues than `page`"),
}
ATOM_FEED: Answers = {
    200: {"description": "The latest issues as an Atom feed (RFC 4287), newest first; valid when there is none yet",
          "content": {"application/atom+xml": {"schema": {"type": "string"}}}},
}
READER_FEED: Answers = {
    200: {"description": "The digests sent to this address's reader, as an Atom feed (RFC 4287), newest first",
          "content": {"application/atom+xml": {"schema": {"type": "string"}}}},
    404: page("The address is not (or no longer) a reader's feed: tampered, replaced by a new one, or its "
              "reader erased"),
}
FEED_RENEW: Answers = {
    400: page("The link's token is tampered with, expired, of another purpose or names nobody: one page for all"),
}
_JSON_FEED_ITEM = {
    "type": "object",
    "required": ["id", "url", "title", "content_html", "content_text", "date_published"],
    "properties": {
        "id": {"type": "string", "description": "the issue's URL"}, "url": {"type": "string", "format": "uri"},
        "title": {"type": "string"}, "content_html": {"type": "string"}, "content_text": {"type": "string"},
        "date_published": {"type": "string", "format": "date-time"},
    },
}
JSON_FEED: Answers = {
    200: {"description": "The latest issues as a JSON Feed (https://jsonfeed.org/version/1.1), newest first",
          "content": {"application/feed+json": {"schema": {
              "type": "object",
              "required": ["version", "title", "home_page_url", "feed_url", "authors", "items"],
              "properties": {
                  "version": {"const": "https://jsonfeed.org/version/1.1"},
                  "title": {"type": "string"}, "description": {"type": "string"}, "language": {"type": "string"},
                  "home_page_url": {"type": "string", "format": "uri"}, "feed_url": {"type": "string", "format": "uri"},
                  "authors": {"type": "array", "minItems": 1, "items": {
                      "type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}, "url": {"type": "string", "format": "uri"}}}},
                  "items": {"type": "array", "items": _JSON_FEED_ITEM},
              },
          }}}},
}
class HealthReport(BaseModel):
    """``ok``, ``in-process`` (no broker) or ``error: …`` for each."""

    database: str
    broker: str


HEALTH: Answers = {
    200: {"description": "The database answers, and the broker too if there is one", "model": HealthReport},
    503: {"description": "The database or the broker does not answer", "model": HealthReport},
}
MALFORMED_BODY: Answers = {400: admin_error("The body could not be read as JSON text")}


def without_site_validation_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without the 422 FastAPI adds to every operation that has parameters, outside /admin."""
    for path, operations in schema.get("paths", {}).items():
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            continue
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    return schema
