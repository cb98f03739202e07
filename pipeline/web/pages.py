"""Page rendering: one Jinja2 environment (autoescape on) over ``templates/web``, and the headers of every answer."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pipeline.compose import links
from pipeline.compose.cards import safe_url
from pipeline.compose.render import templates_path

SECURITY_HEADERS = {
    # Tokens are in the paths: a click from a page must not hand them to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
NO_STORE = {"Cache-Control": "no-store"}
SITE_PATHS = {"home": links.HOME, "archive": links.ARCHIVE, "subscribe": links.SUBSCRIBE,  # every page's own links
              "atom_feed": links.ATOM_FEED, "json_feed": links.JSON_FEED}

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_path() / "web"),
        autoescape=True,  # on for every template, whatever its extension: addresses and tokens come from outside
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["image_src"] = image_src  # escaping keeps a javascript: address working: only these may pass
    return env


_OWN_IMAGE = re.compile(re.escape(links.IMAGE.split("{")[0]) + r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9]+)?")


def image_src(value: Any) -> str | None:
    """An address a page may load an image from: an http(s) URL, or one of the site's own stored images."""
    if isinstance(value, str) and _OWN_IMAGE.fullmatch(value):
        return value
    return safe_url(value)


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``templates/web/<template>`` as a complete HTML answer."""
    settings = request.app.state.settings
    html = environment().get_template(template).render(
        list_name=settings.list_name, list_address=settings.from_address.addr_spec, weekdays=WEEKDAYS,
        paths=SITE_PATHS, **context
    )
    return HTMLResponse(html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def message_page(
    request: Request, *, status_code: int, title: str, text: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A page with only a heading and a sentence (errors, mostly)."""
    return page(request, "message.html", status_code=status_code, headers=headers, title=title, text=text)
