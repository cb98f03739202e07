"""The operators' HTTP API: progress, pause/resume and resends of an issue, behind a bearer token.

Off unless ADMIN_TOKEN is set (every /admin path is then a 404). The same
rules as the CLI apply: an explicit resend scope, ``all`` only with ``force``,
a reason for the record, never to unsubscribed or bounced addresses.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from pipeline import service
from pipeline.errors import PapermailError
from pipeline.models import Edition, ResendScope
from pipeline.service.runner import Runner
from pipeline.settings import Settings
from pipeline.web.admin_guard import token_matches
from pipeline.web.deps import SettingsDep
from pipeline.web.openapi_docs import MALFORMED_BODY, admin_error

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin")
bearer = HTTPBearer(scheme_name="adminToken", description="ADMIN_TOKEN", auto_error=False)


def require_token(settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Settings:
    """The settings, for a request carrying ADMIN_TOKEN.

    AdminGuard has checked the token before routing; this second check keeps
    the routes closed should they ever be served without it, and declares the
    bearer scheme in the OpenAPI schema.
    """
    if not settings.admin_token:
        raise HTTPException(status_code=404)
    given = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    if not token_matches(given, token=settings.admin_token):
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return settings


AdminSettings = Annotated[Settings, Depends(require_token)]


class ResendRequest(BaseModel):
    scope: ResendScope
    addresses: list[str] = Field(default_factory=list, max_length=10_000)
    reason: str = ""
    force: bool = False
    dry_run: bool = False
    edition: Edition = Edition.daily


class PauseRequest(BaseModel):
    reason: str = "paused by an operator"
    edition: Edition = Edition.daily


class IssueProgress(BaseModel):
    """An issue's sending: deliveries per state, the rate over the last minute and the time left."""

    date: dt.date
    edition: Edition
    status: str
    paused_reason: str | None
    counts: dict[str, int]
    open: int
    rate_per_second: float
    eta_seconds: float | None
    selections: int  # distinct choices of papers among its deliveries (readers with the same one share it)
    personal_selections: int  # of those, the ones chosen by readers' interests or votes


class Skipped(BaseModel):
    address: str
    why: str


class ResendOutcome(BaseModel):
    """Who a resend reaches; ``resend_id`` is null when nothing new was queued (a dry run, or a repeat)."""

    resend_id: int | None
    recipients: list[str]
    skipped: list[Skipped]
    dry_run: bool


class PauseOutcome(BaseModel):
    paused: bool


class ResumeOutcome(BaseModel):
    resumed: bool


def _error(exc: PapermailError, status: int = 409) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=status)


def _dispatch(runner: Runner, day: dt.date, edition: Edition) -> None:
    """Send the issue's open deliveries, after the answer: queued on the workers, or here."""
    try:
        runner.send_issue(day=day, edition=edition)
    except PapermailError:
        log.exception("dispatch of %s failed", day)


@router.get("/issues/{day}", responses={200: {"model": IssueProgress}})
def issue_status(day: dt.date, settings: AdminSettings, edition: Edition = Edition.daily) -> JSONResponse:
    try:
        info = service.progress(settings, day=day, edition=edition)
    except PapermailError as exc:
        return _error(exc, 404)
    issue = info.issue
    body: dict[str, Any] = {
        "date": day.isoformat(), "edition": edition.value, "status": issue.status.value,
        "paused_reason": issue.paused_reason, "counts": info.counts, "open": info.open,
        "rate_per_second": round(info.rate, 3),
        "eta_seconds": info.eta.total_seconds() if info.eta else None,
        "selections": info.selections, "personal_selections": info.personal_selections,
    }
    return JSONResponse(body)


@router.post("/issues/{day}/resend", responses={
    200: {"description": "A dry run, or nothing new to send: nothing was queued", "model": ResendOutcome},
    202: {"description": "Queued; sending starts after this answer", "model": ResendOutcome},
    400: admin_error("Scope `all` without `force`, no `reason`, or a body that is not JSON text"),
    409: admin_error("The issue cannot be resent (it does not exist or has not gone out)")})
def resend(day: dt.date, request: ResendRequest, settings: AdminSettings, background: BackgroundTasks,
           http_request: Request) -> JSONResponse:
    if request.scope is ResendScope.all and not (request.force or request.dry_run):
        return JSONResponse({"error": "scope 'all' sends the issue again to everyone: set force"}, status_code=400)
    if not request.reason.strip() and not request.dry_run:
        return JSONResponse({"error": "give a reason: every resend is recorded"}, status_code=400)
    try:
        record, plan = service.resend(settings, day=day, edition=request.edition, scope=request.scope,
                                   addresses=request.addresses, reason=request.reason, requested_by="admin-api",
                                   dry_run=request.dry_run)
    except PapermailError as exc:
        return _error(exc)
    body = {"resend_id": record.id if record else None, "recipients": plan.addresses,
            "skipped": [{"address": a, "why": why} for a, why in plan.skipped], "dry_run": request.dry_run}
    if record is not None:
        background.add_task(_dispatch, http_request.app.state.runner, day, request.edition)
    return JSONResponse(body, status_code=202 if record else 200)


@router.post("/issues/{day}/pause", responses={
    200: {"description": "Paused", "model": PauseOutcome},
    409: {"description": "Not sending, so not paused", "model": PauseOutcome}, **MALFORMED_BODY})
def pause(day: dt.date, request: PauseRequest, settings: AdminSettings) -> JSONResponse:
    try:
        paused = service.pause(settings, day=day, edition=request.edition, reason=request.reason)
    except PapermailError as exc:
        return _error(exc, 404)
    return JSONResponse({"paused": paused}, status_code=200 if paused else 409)


@router.post("/issues/{day}/resume", status_code=202, responses={
    202: {"description": "Resumed; sending carries on after this answer", "model": ResumeOutcome},
    409: {"description": "Not paused, so not resumed", "model": ResumeOutcome}})
def resume(day: dt.date, settings: AdminSettings, background: BackgroundTasks, http_request: Request,
           edition: Edition = Edition.daily) -> JSONResponse:
    try:
        resumed = service.resume(settings, day=day, edition=edition)
    except PapermailError as exc:
        return _error(exc, 404)
    if resumed:
        background.add_task(_dispatch, http_request.app.state.runner, day, edition)
    return JSONResponse({"resumed": resumed}, status_code=202 if resumed else 409)
