"""``/healthz``: can this process reach its database and its broker?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pipeline import service
from pipeline.settings import Settings
from pipeline.web.deps import SettingsDep
from pipeline.web.openapi_docs import HEALTH

router = APIRouter()


def _error(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"error: {type(exc).__name__}: {first_line}".rstrip(": ")


def database_status(settings: Settings) -> str:
    try:
        with service.engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return "ok"


def broker_status(settings: Settings) -> str:
    url = settings.broker_url
    if not url:
        return "in-process"  # tasks run inside this process: nothing to reach
    try:
        if url.startswith("redis"):
            import redis

            redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
        else:
            from kombu import Connection  # any other broker Celery speaks

            with Connection(url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return "ok"


@router.get("/healthz", responses=HEALTH)
def healthz(settings: SettingsDep) -> JSONResponse:
    """200 when the database answers and the broker answers (or there is none), else 503."""
    body = {"database": database_status(settings), "broker": broker_status(settings)}
    healthy = body["database"] == "ok" and body["broker"] in ("ok", "in-process")
    return JSONResponse(body, status_code=200 if healthy else 503)
