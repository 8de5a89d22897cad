"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
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
from app.cors import PublicCors
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.oauth.cimd import CimdFetcher
from app.oauth.router import router as oauth_router
from app.oauth.service import purge
from app.oauth.tokens import SigningKeys
from app.ratelimit import RateLimits
from app.vault.crypto import Envelope, LocalKeyProvider
from app.web import APP_DIR

logger = logging.getLogger("gatehouse")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    envelope = Envelope(LocalKeyProvider.from_env_value(settings.vault_keys_value))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.rate_limits = RateLimits(settings.redis_url)
        app.state.envelope = envelope
        app.state.signing_keys = SigningKeys(
            sessionmaker, envelope, access_token_ttl=settings.access_token_ttl
        )
        app.state.cimd_fetcher = CimdFetcher(
            ca_bundle=settings.cimd_ca_bundle, allow_loopback=settings.cimd_allow_loopback
        )
        # Make sure a signing key exists before the first request: creating one inside a request
        # would need a second write transaction while the request's own is open.
        await app.state.signing_keys.active()
        housekeeping = (
            asyncio.create_task(purge_periodically(app)) if settings.purge_interval else None
        )
        try:
            yield
        finally:
            if housekeeping:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
            await app.state.cimd_fetcher.aclose()
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
    app.include_router(oauth_router)
    app.add_middleware(PublicCors, paths=PUBLIC_CORS_PATHS)
    return app


PUBLIC_CORS_PATHS = frozenset(
    {
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/token",
        "/register",
        "/revoke",
        "/introspect",
        "/jwks.json",
    }
)


async def purge_periodically(app: FastAPI) -> None:
    """Delete expired rows now and then; with jitter, so replicas do not all run at once."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.purge_interval * (0.5 + secrets.randbelow(1000) / 1000))
        try:
            async with app.state.sessionmaker() as session, session.begin():
                counts = await purge(session, settings, app.state.signing_keys.publish_window())
            logger.info("purged expired rows: %s", counts)
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("purge failed")
