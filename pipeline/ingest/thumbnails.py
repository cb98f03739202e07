"""Papers' thumbnails: fetched once at ingest, checked, re-encoded, kept by digest.

A thumbnail URL comes from the feed, that is from the internet, so it is fetched
only over https from the hosts in ``THUMBNAIL_HOSTS``, without following redirects
and up to ``MAX_BYTES``. What arrives is decoded and re-encoded as a plain JPEG: no
metadata, no animation, no format a mail client might mishandle, at most twice the
card's width. The site serves our copy (``IMAGES=proxied``), so a reader's mail
client never asks a third party for it.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from PIL import Image as Picture
from PIL import UnidentifiedImageError
from sqlmodel import Session

from pipeline.compose.links import IMAGE_SUFFIX
from pipeline.ingest.records import Skipped
from pipeline.models import Image, Paper

MAX_BYTES = 5_000_000
MAX_PIXELS = 40_000_000  # decoding is refused above this, whatever the file's size
MIN_SIDE = 64  # a smaller picture is a pixel or an icon, not a paper's thumbnail
MAX_ASPECT = 4.0  # wider or taller than 4:1 is a banner or a strip
STORED_WIDTH = 1144  # twice the 572 px a card gives it: sharp on high-density screens
JPEG_QUALITY = 82
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
FETCHERS = 4


_NAME = re.compile(rf"([0-9a-f]{{64}}){re.escape(IMAGE_SUFFIX)}", re.ASCII)


def find_image(session: Session, name: str) -> Image | None:
    """The stored image a site address names (``<sha256>.jpg``), or None."""
    match = _NAME.fullmatch(name)
    return session.get(Image, match[1]) if match else None


class ThumbnailError(Exception):
    """Why one thumbnail was not kept: a short reason for the ingest report."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    width: int
    height: int
    source_url: str
    content_type: str = "image/jpeg"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_source(url: str, hosts: Iterable[str]) -> None:
    """Raise ThumbnailError unless ``url`` is https on one of ``hosts`` (default port, no credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ThumbnailError("not a valid URL") from None
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        raise ThumbnailError("not a plain https URL")
    if (parts.hostname or "").lower() not in {h.lower() for h in hosts}:
        raise ThumbnailError(f"host {parts.hostname} is not in THUMBNAIL_HOSTS")


def download(client: httpx.Client, url: str, *, timeout: float) -> bytes:
    """The body of ``url``, refused past MAX_BYTES; ThumbnailError on any failure."""
    try:
        with client.stream("GET", url, follow_redirects=False, timeout=timeout) as response:
            if response.status_code != 200:
                raise ThumbnailError(f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise ThumbnailError(f"larger than {MAX_BYTES // 1_000_000} MB")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise ThumbnailError(f"larger than {MAX_BYTES // 1_000_000} MB")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise ThumbnailError(f"fetch failed ({type(exc).__name__})") from exc


def reencode(raw: bytes, *, source_url: str) -> Thumbnail:
    """Decode ``raw`` (PNG, JPEG, WebP or GIF) and re-encode it as a flat JPEG at most STORED_WIDTH wide."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Picture.DecompressionBombWarning)
            with Picture.open(io.BytesIO(raw), formats=FORMATS) as picture:
                width, height = picture.size  # from the header: checked before anything is decoded
                if width * height > MAX_PIXELS:
                    raise ThumbnailError(f"{width} x {height} is too many pixels")
                if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
                    raise ThumbnailError(f"{width} x {height} is not a thumbnail's shape")
                picture.seek(0)  # an animation's first frame
                flat = _flatten(picture)
    except (Picture.DecompressionBombError, Picture.DecompressionBombWarning) as exc:
        raise ThumbnailError("too many pixels to decode") from exc
    except UnidentifiedImageError as exc:
        raise ThumbnailError("not a PNG, JPEG, WebP or GIF image") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise ThumbnailError(f"a broken image ({' '.join(str(exc).split())[:80]})") from exc
    if flat.width > STORED_WIDTH:
        flat = flat.resize((STORED_WIDTH, max(1, round(flat.height * STORED_WIDTH / flat.width))),
                           Picture.Resampling.LANCZOS)
    flat = Picture.frombytes("RGB", flat.size, flat.tobytes())  # the pixels alone: no comment, EXIF or profile
    out = io.BytesIO()
    flat.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return Thumbnail(data=out.getvalue(), width=flat.width, height=flat.height, source_url=source_url)


def _flatten(picture: Picture.Image) -> Picture.Image:
    """RGB on white: transparency would show as black in some clients."""
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        white = Picture.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return picture.convert("RGB")


def fetch_thumbnail(client: httpx.Client, url: str, *, hosts: Iterable[str], timeout: float) -> Thumbnail:
    check_source(url, hosts)
    return reencode(download(client, url, timeout=timeout), source_url=url)


def keep(session: Session, thumbnail: Thumbnail) -> Image:
    """The stored image with these bytes, added if new."""
    image = session.get(Image, thumbnail.digest)
    if image is None:
        image = Image(digest=thumbnail.digest, content_type=thumbnail.content_type, width=thumbnail.width,
                      height=thumbnail.height, data=thumbnail.data, source_url=thumbnail.source_url)
        session.add(image)
    return image


def store_thumbnails(session: Session, client: httpx.Client, papers: list[Paper], *, hosts: Iterable[str],
                     timeout: float) -> tuple[int, list[Skipped]]:
    """Fetch the thumbnail of each paper that has a URL and no copy yet; (kept, skipped with reasons).

    A thumbnail that fails is skipped, and tried again at the next ingest; the paper is
    shown without it meanwhile. Flushes but does not commit.
    """
    wanted = [p for p in papers if p.thumbnail_url and p.thumbnail is None]
    hosts = tuple(hosts)

    def fetch(paper: Paper) -> Thumbnail | ThumbnailError:
        try:
            return fetch_thumbnail(client, paper.thumbnail_url or "", hosts=hosts, timeout=timeout)
        except ThumbnailError as exc:
            return exc

    kept, skipped = 0, []
    with ThreadPoolExecutor(max_workers=FETCHERS) as pool:
        for paper, result in zip(wanted, pool.map(fetch, wanted), strict=True):
            if isinstance(result, ThumbnailError):
                skipped.append(Skipped(ref=paper.arxiv_id, reason=f"thumbnail: {result}"))
                continue
            paper.thumbnail = keep(session, result).digest
            session.add(paper)
            kept += 1
    session.flush()
    return kept, skipped
