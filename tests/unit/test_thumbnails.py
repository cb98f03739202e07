"""Thumbnails from the internet: only from allowed https hosts, only real pictures, re-encoded before use."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import pytest
from PIL import Image

from pipeline.ingest.thumbnails import (
    MAX_BYTES,
    STORED_WIDTH,
    ThumbnailError,
    check_source,
    download,
    fetch_thumbnail,
    reencode,
)
from tests.support.papers_api import THUMBNAIL_HOST, thumbnail_png

URL = f"https://{THUMBNAIL_HOST}/social-thumbnails/papers/2503.16428.png"
HOSTS = (THUMBNAIL_HOST,)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def serving(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_a_social_thumbnail_becomes_a_plain_jpeg_at_most_twice_the_card_width():
    kept = reencode(thumbnail_png("Large Multimodal Models as General In-Context Classifiers"), source_url=URL)
    image = decoded(kept.data)
    assert image.format == "JPEG" and image.mode == "RGB"
    assert (kept.width, kept.height) == image.size == (STORED_WIDTH, round(648 * STORED_WIDTH / 1200))
    assert kept.content_type == "image/jpeg" and kept.source_url == URL and len(kept.digest) == 64
    assert not image.info.get("exif") and "comment" not in image.info


def test_a_small_picture_keeps_its_size():
    kept = reencode(encoded(Image.new("RGB", (400, 300), "teal"), "PNG"), source_url=URL)
    assert (kept.width, kept.height) == (400, 300)


def test_transparency_is_flattened_on_white_not_black():
    clear = Image.new("RGBA", (200, 120), (0, 0, 0, 0))
    kept = decoded(reencode(encoded(clear, "PNG"), source_url=URL).data)
    assert min(kept.getpixel((100, 60))) > 245


def test_metadata_is_dropped():
    exif = Image.Exif()
    exif[0x010E] = "GPS and camera serial number"  # ImageDescription
    photo = encoded(Image.new("RGB", (300, 200), "navy"), "JPEG", exif=exif, comment=b"tracking id 42")
    assert b"tracking id 42" in photo and b"camera serial" in photo
    kept = reencode(photo, source_url=URL).data
    assert b"tracking id 42" not in kept and b"camera serial" not in kept


def test_an_animation_keeps_its_first_frame_only():
    frames = [Image.new("RGB", (160, 100), colour) for colour in ("red", "blue", "green")]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    kept = decoded(reencode(gif, source_url=URL).data)
    assert getattr(kept, "n_frames", 1) == 1
    red, green, blue = kept.getpixel((80, 50))
    assert red > 200 and green < 60 and blue < 60


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``, with one tiny compressed row: a decompression bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"<html><script>alert(1)</script></html>", "not a PNG, JPEG, WebP or GIF image"),
    (b"", "not a PNG, JPEG, WebP or GIF image"),
    (b"%PDF-1.7\n" + b"0" * 200, "not a PNG, JPEG, WebP or GIF image"),
    (encoded(Image.new("RGB", (64, 64)), "BMP"), "not a PNG, JPEG, WebP or GIF image"),
    (encoded(Image.new("RGB", (600, 400), "red"), "PNG")[:300], "a broken image"),
    (_png_header_only(20_000, 20_000), "too many pixels"),
    (_png_header_only(8_000, 8_000), "too many pixels"),
    (encoded(Image.new("RGB", (1, 1)), "PNG"), "not a thumbnail's shape"),
    (encoded(Image.new("RGB", (1200, 100)), "PNG"), "not a thumbnail's shape"),
])
def test_anything_but_a_real_picture_is_refused_with_a_reason(raw, reason):
    with pytest.raises(ThumbnailError, match=reason):
        reencode(raw, source_url=URL)


@pytest.mark.parametrize("url", [
    f"http://{THUMBNAIL_HOST}/a.png",  # mixed content, and readable on the way
    "https://127.0.0.1/a.png",
    "https://localhost:6379/",
    "https://evil.example/a.png",
    f"https://{THUMBNAIL_HOST}.evil.example/a.png",
    f"https://user:pw@{THUMBNAIL_HOST}/a.png",
    f"https://{THUMBNAIL_HOST}:8443/a.png",
    "file:///etc/passwd",
    "https://[::1/a.png",
])
def test_only_https_from_the_allowed_hosts_is_fetched(url):
    with pytest.raises(ThumbnailError):
        check_source(url, HOSTS)
    asked: list[httpx.Request] = []
    client = serving(lambda request: asked.append(request) or httpx.Response(200))
    with pytest.raises(ThumbnailError):
        fetch_thumbnail(client, url, hosts=HOSTS, timeout=5)
    assert asked == []


def test_the_allowed_host_is_matched_without_regard_to_case():
    check_source("https://CDN-Thumbnails.HuggingFace.co/x.png", HOSTS)


def test_a_redirect_is_not_followed():
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with pytest.raises(ThumbnailError, match="HTTP 302"):
        download(serving(handler), URL, timeout=5)
    assert asked == [URL]


def test_a_body_past_the_limit_is_refused_declared_or_not():
    big = b"\x89PNG" + b"0" * MAX_BYTES
    with pytest.raises(ThumbnailError, match="larger than"):
        download(serving(lambda r: httpx.Response(200, content=big)), URL, timeout=5)

    def undeclared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"0" * 1_000_000] * 6))  # streamed: no Content-Length

    with pytest.raises(ThumbnailError, match="larger than"):
        download(serving(undeclared), URL, timeout=5)


@pytest.mark.parametrize(("answer", "reason"), [
    (httpx.Response(404), "HTTP 404"),
    (httpx.Response(503), "HTTP 503"),
])
def test_an_error_answer_is_a_reason(answer, reason):
    with pytest.raises(ThumbnailError, match=reason):
        download(serving(lambda r: answer), URL, timeout=5)


def test_a_network_failure_is_a_reason():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(ThumbnailError, match="ConnectTimeout"):
        download(serving(handler), URL, timeout=5)
