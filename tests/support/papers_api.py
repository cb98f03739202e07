"""The Hugging Face papers API as a MockTransport: a day's list in its real format, and its thumbnails.

The thumbnails are drawn here (Pillow), in the shape of the real social thumbnails
(1200 x 648 PNG, the title on a plain background), since the recorded list holds
only their addresses.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont

THUMBNAIL_HOST = "cdn-thumbnails.huggingface.co"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
THUMBNAIL_BAR = (67, 56, 202)  # the colour of each drawn thumbnail's top bar


def thumbnail_png(title: str, *, size: tuple[int, int] = (1200, 648), hue: int = 0) -> bytes:
    """A PNG with ``title`` on a tinted background, like the social thumbnails the API links to."""
    image = Image.new("RGB", size, (238 - hue % 40, 242, 255 - hue % 30))
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.truetype(FONT, size[0] // 22)
    except OSError:
        font = ImageFont.load_default()
    draw.rectangle((0, 0, size[0], size[1] // 12), fill=THUMBNAIL_BAR)
    y = size[1] // 5
    for line in textwrap.wrap(title, 34)[:4]:
        draw.text((size[0] // 14, y), line, fill=(17, 24, 39), font=font)
        y += size[0] // 16
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def day_items(path: Path) -> list[dict]:
    return json.loads(path.read_bytes())


Handler = Callable[[httpx.Request], httpx.Response]


def papers_api(items: list[dict], *, thumbnail: Handler | None = None) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose /api/daily_papers serves ``items`` (paginated as the API does) and whose thumbnail
    host answers with ``thumbnail(request)``, by default a drawn PNG of the paper's title."""
    titles = {item["thumbnail"]: item["paper"]["title"] for item in items if item.get("thumbnail")}
    requests: list[httpx.Request] = []

    def drawn(request: httpx.Request) -> httpx.Response:
        title = titles.get(str(request.url))
        if title is None:
            return httpx.Response(404)
        return httpx.Response(200, content=thumbnail_png(title, hue=len(title)),
                              headers={"Content-Type": "image/png"})

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.host == THUMBNAIL_HOST:
            return (thumbnail or drawn)(request)
        if request.url.path == "/api/daily_papers":
            page, limit = int(request.url.params["p"]), int(request.url.params["limit"])
            return httpx.Response(200, json=items[page * limit : (page + 1) * limit])
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler)), requests
