"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from app import __version__
from app.auth.deps import SignInRequired, sign_in_url
from app.auth.router import router as auth_router
from app.config import Settings, load_settings
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.ratelimit import RateLimits
from app.web import APP_DIR

logger = logging.getLogger("gatehouse")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.rate_limits = RateLimits(settings.redis_url)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Gatehouse",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, SignInRequired):  # pragma: no cover
            raise exc
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_required)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready(request: Request) -> Response:
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; say which kind, no details
            logger.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    app.mount("/static", StaticFiles(directory=APP_DIR / "static"), name="static")
    app.include_router(auth_router)
    return app
