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
ARCHIVED_ISSUE: Answers = {
    404: page("No issue of that date (YYYY-MM-DD) and edition has gone out"),
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
