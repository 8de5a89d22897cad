"""The operator's probes: /health (the process answers) and /ready (it reaches its database)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.failures import RETRY_AFTER
from app.state import ServicesDep

logger = logging.getLogger("gatehouse")

ops_router = APIRouter(tags=["ops"])


@ops_router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@ops_router.get("/ready")
async def ready(services: ServicesDep) -> Response:
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; say which kind, no details
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            503,
            headers={"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"},
        )
    return JSONResponse({"status": "ok", "database": "ok"})
