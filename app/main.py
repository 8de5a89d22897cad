"""The application factory: one FastAPI app, in the role `all`, `auth` or `mcp`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from app import __version__
from app.auth.deps import SignInRequired, sign_in_url
from app.auth.mfa import challenges as mfa_challenges
from app.auth.mfa.router import router as mfa_router
from app.auth.router import router as auth_router
from app.config import Settings, load_settings
from app.connectors.base import Connector
from app.connectors.cache import make_cache
from app.connectors.registry import build_connectors
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.kit.body_limit import BodyLimit
from app.kit.cors import PublicCors
from app.kit.envelope import Envelope, LocalKeyProvider
from app.kit.ratelimit import RateLimits
from app.kit.web import APP_DIR
from app.telemetry import instrument_app, instrument_engine, setup_telemetry

logger = logging.getLogger("gatehouse")

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


def create_app(settings: Settings | None = None, *, freeze_after_startup: bool = False) -> FastAPI:
    """The application. `freeze_after_startup` is for the serving process only (`app.asgi`)."""
    settings = settings or load_settings()
    serves_auth = settings.gatehouse_role in ("all", "auth")
    serves_mcp = settings.gatehouse_role in ("all", "mcp")
    telemetry = setup_telemetry(settings)
    envelope = Envelope(LocalKeyProvider.from_env_value(settings.vault_keys_value))
    connectors = build_connectors(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        instrument_engine(engine, telemetry)
        sessionmaker = create_sessionmaker(engine)
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.rate_limits = RateLimits(settings.redis_url)
        app.state.envelope = envelope
        app.state.connectors = connectors
        app.state.connector_cache = make_cache(
            redis_url=settings.redis_url,
            zone=settings.connector_cache_tz,
            fixed_ttl=settings.connector_cache_ttl,
        )
        async with AsyncExitStack() as stack:
            stack.callback(telemetry.flush)
            stack.push_async_callback(engine.dispose)
            stack.push_async_callback(app.state.rate_limits.aclose)
            stack.push_async_callback(app.state.connector_cache.aclose)
            for connector in connectors.values():
                stack.push_async_callback(connector.aclose)
            if serves_auth:
                await _start_authorization_server(app, settings, stack)
            if serves_mcp:
                await _start_resource_server(app, settings, stack)
            if freeze_after_startup:
                _freeze_startup_objects()
            yield

    app = FastAPI(
        title="Gatehouse",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    install_error_handlers(app)

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
    # The router tries routes in order: /mcp, the hot path, goes before the pages and the AS.
    if serves_mcp:
        _install_resource_server(app, settings, connectors.values())
    if serves_auth:
        _install_authorization_server(app)
    app.add_middleware(PublicCors, paths=PUBLIC_CORS_PATHS)
    # /mcp enforces its own, larger limit with a JSON-RPC error.
    app.add_middleware(BodyLimit, max_bytes=64 * 1024, skip=frozenset({"/mcp", "/mcp/"}))
    instrument_app(app, telemetry)
    return app


def _freeze_startup_objects() -> None:
    """Keep start-up's objects out of every later full garbage collection.

    A full collection walks every tracked object, and what start-up leaves (modules, routes,
    pydantic models, SQLAlchemy mappers: ~170 000 objects) never becomes garbage; walking it
    stalled every in-flight request for ~110 ms, more than once a second under load
    (docs/PERFORMANCE.md). Collect first so no garbage is frozen (frozen objects are never
    freed), then move the rest to the permanent generation, which the collector skips.
    """
    gc.collect()
    gc.freeze()


# -- the authorization server (roles all, auth) ---------------------------------------------------


def _install_authorization_server(app: FastAPI) -> None:
    from app.oauth.router import router as oauth_router
    from app.vault.router import router as vault_router

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, SignInRequired):  # pragma: no cover
            raise exc
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.include_router(auth_router)
    app.include_router(mfa_router)
    app.include_router(oauth_router)
    app.include_router(vault_router)


async def _start_authorization_server(
    app: FastAPI, settings: Settings, stack: AsyncExitStack
) -> None:
    from app.oauth.cimd import CimdFetcher
    from app.oauth.tokens import SigningKeys

    app.state.signing_keys = SigningKeys(
        app.state.sessionmaker, app.state.envelope, access_token_ttl=settings.access_token_ttl
    )
    app.state.cimd_fetcher = CimdFetcher(
        ca_bundle=settings.cimd_ca_bundle, allow_loopback=settings.cimd_allow_loopback
    )
    stack.push_async_callback(app.state.cimd_fetcher.aclose)
    # Make sure a signing key exists before the first request: creating one inside a request
    # would need a second write transaction while the request's own is open.
    await app.state.signing_keys.active()
    if settings.purge_interval:
        task = asyncio.create_task(_purge_periodically(app))
        stack.push_async_callback(_cancel, task)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _purge_periodically(app: FastAPI) -> None:
    """Delete expired rows now and then; with jitter, so replicas do not all run at once."""
    from app.oauth.service import purge

    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.purge_interval * (0.5 + secrets.randbelow(1000) / 1000))
        try:
            async with app.state.sessionmaker() as session, session.begin():
                counts = await purge(session, settings, app.state.signing_keys.publish_window())
                counts["mfa_challenges"] = await mfa_challenges.purge(session)
            logger.info("purged expired rows: %s", counts)
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("purge failed")


# -- the MCP resource server (roles all, mcp) ------------------------------------------------------


def _install_resource_server(
    app: FastAPI, settings: Settings, connectors: Iterable[Connector]
) -> None:
    from mcp.server.transport_security import TransportSecuritySettings

    from app.mcp.deps import McpChallenge, challenge_response
    from app.mcp.router import (
        McpOriginRefused,
        allowed_hosts,
        allowed_origins,
        jsonrpc_error,
        metadata_router,
    )
    from app.mcp.router import router as mcp_router
    from app.mcp.server import build_mcp
    from app.mcp.verification import RevocationUnknown

    mcp = build_mcp(connectors)
    # Host and Origin are checked by our own dependency, before authentication.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp.server.streamable_http_app(stateless_http=True, transport_security=security)
    app.state.mcp_sse_manager = mcp.server.session_manager
    mcp.server.streamable_http_app(
        stateless_http=True, json_response=True, transport_security=security
    )
    app.state.mcp_json_manager = mcp.server.session_manager
    app.state.mcp = mcp
    app.state.mcp_hosts = allowed_hosts(settings)
    app.state.mcp_origins = allowed_origins(settings)

    async def on_challenge(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, McpChallenge):  # pragma: no cover
            raise exc
        return challenge_response(request, exc)

    async def on_origin(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, McpOriginRefused):  # pragma: no cover
            raise exc
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)

    async def on_revocation_unknown(request: Request, exc: Exception) -> Response:
        # The token may be fine; the issuer that would say so is not answering. RFC 9110
        # §15.6.4: 503 with Retry-After, and a JSON-RPC error the client can show.
        return jsonrpc_error(
            503,
            -32603,
            "the authorization server cannot confirm this token right now; retry shortly",
            headers={"Retry-After": "5", "Cache-Control": "no-store"},
        )

    app.add_exception_handler(McpChallenge, on_challenge)
    app.add_exception_handler(RevocationUnknown, on_revocation_unknown)
    app.add_exception_handler(McpOriginRefused, on_origin)
    app.include_router(metadata_router)
    app.include_router(mcp_router)
    app.add_middleware(
        PublicCors,
        paths=frozenset({"/mcp", "/mcp/"}),
        origins=app.state.mcp_origins,
        allow_headers=(
            "Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, "
            "Last-Event-ID"
        ),
        expose_headers="WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version",
        methods="GET, POST, DELETE, OPTIONS",
    )


async def _start_resource_server(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    from app.mcp.token_cache import CachingTokenVerifier
    from app.mcp.verification import (
        Directory,
        IntrospectionCheck,
        LocalTokenVerifier,
        RemoteTokenVerifier,
        RevocationCheck,
        RevocationFeed,
        TokenVerifier,
    )

    check: RevocationCheck | None = None
    if settings.gatehouse_role == "all":
        verifier: TokenVerifier = LocalTokenVerifier(
            app.state.signing_keys, issuer=settings.issuer, audience=settings.mcp_resource
        )
    else:
        http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        stack.push_async_callback(http.aclose)
        verifier = RemoteTokenVerifier(
            issuer=settings.auth_issuer_url,
            audience=settings.mcp_resource,
            http=http,
            fetch_from=settings.auth_issuer_internal_url,
        )
        secret = settings.auth_introspection_client_secret
        if settings.uses_introspection and secret is not None:
            introspection = IntrospectionCheck(
                issuer=settings.auth_issuer_url,
                http=http,
                client_id=settings.auth_introspection_client_id,
                client_secret=secret.get_secret_value(),
                fetch_from=settings.auth_issuer_internal_url,
            )
            await introspection.check_credentials()
            stack.push_async_callback(introspection.close)
            check = introspection
    # Each distinct token's signature is checked once; exp, revocation and scopes every time.
    app.state.token_verifier = CachingTokenVerifier(verifier)
    if check is None:
        feed = RevocationFeed(app.state.sessionmaker, access_token_ttl=settings.access_token_ttl)
        await feed.poll()
        feed.start()
        stack.push_async_callback(feed.stop)
        check = feed
    app.state.revocation_check = check
    app.state.directory = Directory(app.state.sessionmaker)
    await stack.enter_async_context(app.state.mcp_sse_manager.run())
    await stack.enter_async_context(app.state.mcp_json_manager.run())
