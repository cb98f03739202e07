"""Stored thumbnails, by the digest of their bytes: the same URL for every reader, cached for good.

A mail that shows a paper's thumbnail loads it from here (``IMAGES=proxied``), so
no third party learns who opened it, and the address says nothing about who asks.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from pipeline.compose import links as paths
from pipeline.ingest.thumbnails import find_image
from pipeline.web.deps import SessionDep
from pipeline.web.openapi_docs import IMAGE

router = APIRouter()

FOREVER = "public, max-age=31536000, immutable"  # the address is the digest: its bytes never change


@router.get(paths.IMAGE, response_class=Response, responses=IMAGE)
def image(name: str, request: Request, session: SessionDep) -> Response:
    """The stored image ``name`` (``<sha256 of its bytes>.jpg``)."""
    stored = find_image(session, name)
    if stored is None:
        raise HTTPException(status_code=404)
    etag = f'"{stored.digest}"'
    headers = {"Cache-Control": FOREVER, "ETag": etag}
    if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(stored.data, media_type=stored.content_type, headers=headers)
