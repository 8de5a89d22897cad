"""The application factory: one FastAPI app, in the role `all`, `auth` or `mcp`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import Protocol

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.auth import passwords
from app.auth.approval import AccountApprovalGate
from app.auth.brand import router as brand_router
from app.auth.connect import router as connect_router
from app.auth.deps import SignInRequired, sign_in_url
from app.auth.device_names import device_name
from app.auth.mfa.router import router as mfa_router
from app.auth.recovery.router import router as recovery_router
from app.auth.router import router as auth_router
from app.auth.signin_limits import SignInLimits
from app.config import Settings, load_settings
from app.connectors.base import Connector
from app.connectors.cache import make_cache
from app.connectors.consent import ConnectorConsent
from app.connectors.registry import build_connectors
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.failures import install_failure_handlers
from app.housekeeping import purge
from app.identity.flow import Providers
from app.kit.body_limit import BodyLimit
from app.kit.cors import PublicCors
from app.kit.envelope import Envelope, LocalKeyProvider
from app.kit.error_log import UnhandledErrors
from app.kit.ratelimit import RateLimits
from app.kit.warm import warm_routes, warm_templates
from app.kit.web import APP_DIR, templates
from app.kit.work_gate import WorkGate, default_concurrency
from app.mail.outbox import running_outbox
from app.mcp.directory import Directory
from app.mcp.revocation import IntrospectionCheck, RevocationCheck, RevocationFeed
from app.mcp.verifiers import (
    CachingTokenVerifier,
    LocalTokenVerifier,
    RemoteTokenVerifier,
    TokenVerifier,
)
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.client_keys import ClientKeys
from app.oauth.client_names import AuthorizeClientNames
from app.oauth.logos import ClientLogos
from app.oauth.signing_keys import SigningKeys
from app.ops import ops_router
from app.state import (
    AuthorizationServices,
    ResourceServices,
    Services,
    publish,
)
from app.telemetry import Telemetry, instrument_app, instrument_engine, setup_telemetry

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
    endpoint: McpEndpointLike | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(telemetry.flush)
            services = await _start_services(settings, telemetry, envelope, connectors, stack)
            publish(app, services)
            if endpoint is not None:
                await stack.enter_async_context(endpoint.running())
            if freeze_after_startup:
                warm_routes(app.router.routes)
                if serves_auth:  # the pages' filters are the authorization server's
                    warm_templates()
                _freeze_startup_objects()
            yield

    app = FastAPI(
        title="Gatehouse",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=telemetry.fastapi_config,
    )
    app.state.settings = settings  # read by app.kit.web before and after start-up
    app.state.telemetry = telemetry
    install_error_handlers(app)
    install_failure_handlers(app, uses_redis=bool(settings.redis_url))
    app.include_router(ops_router)
    app.mount("/static", StaticFiles(directory=APP_DIR / "static"), name="static")
    # The router tries routes in order: /mcp, the hot path, goes before the pages and the AS.
    if serves_mcp:
        endpoint = _install_resource_server(app, settings, connectors.values(), telemetry.enabled)
    if serves_auth:
        _install_authorization_server(app)
    app.add_middleware(PublicCors, paths=PUBLIC_CORS_PATHS)
    # /mcp enforces its own, larger limit with a JSON-RPC error.
    app.add_middleware(BodyLimit, max_bytes=64 * 1024, skip=frozenset({"/mcp", "/mcp/"}))
    if endpoint is not None:
        endpoint.put_in_front(app)  # /mcp skips the pages' middleware and the router
    app.add_middleware(UnhandledErrors)  # outermost of ours: one line and a 500 for the rest
    instrument_app(app, telemetry)
    return app


class McpEndpointLike(Protocol):
    """What the lifespan needs of app.mcp.endpoint.McpEndpoint (not imported in role auth)."""

    def running(self) -> AbstractAsyncContextManager[None]: ...

    def put_in_front(self, app: FastAPI) -> None: ...


def _password_gate(settings: Settings) -> WorkGate:
    """Password hashes in flight in this process (PASSWORD_HASH_CONCURRENCY)."""
    concurrency = settings.password_hash_concurrency or default_concurrency()
    passwords.configure(concurrency, settings.password_hash_priority)  # a thread per slot
    return WorkGate("password hash", concurrency=concurrency, wait=settings.password_hash_wait)


async def _start_services(
    settings: Settings,
    telemetry: Telemetry,
    envelope: Envelope,
    connectors: Mapping[str, Connector],
    stack: AsyncExitStack,
) -> Services:
    """Everything the process keeps open while it serves; closed by `stack`, newest first."""
    engine = create_engine(settings.database_url)
    instrument_engine(engine, telemetry)
    stack.push_async_callback(engine.dispose)
    sessionmaker = create_sessionmaker(engine)
    rate_limits = RateLimits(settings.redis_url)
    stack.push_async_callback(rate_limits.aclose)
    cache = make_cache(
        redis_url=settings.redis_url,
        zone=settings.connector_cache_tz,
        fixed_ttl=settings.connector_cache_ttl,
    )
    stack.push_async_callback(cache.aclose)
    for connector in connectors.values():
        stack.push_async_callback(connector.aclose)
    outbox = await stack.enter_async_context(running_outbox(settings))
    authorization = resource = None
    if settings.gatehouse_role in ("all", "auth"):
        authorization = await _start_authorization_server(settings, sessionmaker, envelope, stack)
        authorization = replace(
            authorization,
            approval_gates=(AccountApprovalGate(settings),),
            consent_extensions=(
                ConnectorConsent(
                    settings=settings,
                    enabled=connectors,
                    limits=rate_limits,
                    envelope=envelope,
                    cache=cache,
                ),
            ),
        )
    if settings.gatehouse_role in ("all", "mcp"):
        resource = await _start_resource_server(settings, sessionmaker, authorization, stack)
    return Services(
        settings=settings,
        telemetry=telemetry,
        engine=engine,
        sessionmaker=sessionmaker,
        rate_limits=rate_limits,
        envelope=envelope,
        connectors=connectors,
        connector_cache=cache,
        outbox=outbox,
        signin_limits=SignInLimits(rate_limits, settings),
        password_gate=_password_gate(settings),
        authorization_services=authorization,
        resource_services=resource,
    )


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
    from app.identity.router import router as identity_router
    from app.oauth.endpoints import router as oauth_router
    from app.oauth.endpoints.token import put_before_router
    from app.oauth.errors import install_oauth_error_handler
    from app.vault.router import router as vault_router

    async def sign_in_required(_request: Request, exc: Exception) -> Response:
        if not isinstance(exc, SignInRequired):  # pragma: no cover
            raise exc
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    app.add_exception_handler(SignInRequired, sign_in_required)
    install_oauth_error_handler(app)
    app.include_router(auth_router)
    app.include_router(recovery_router)
    app.include_router(identity_router)
    app.include_router(mfa_router)
    app.include_router(connect_router)
    app.include_router(brand_router)
    templates.env.filters["device_name"] = device_name
    app.include_router(oauth_router)
    app.include_router(vault_router)
    put_before_router(app)  # inside the pages' CORS and body limit, added after this


async def _start_authorization_server(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    envelope: Envelope,
    stack: AsyncExitStack,
) -> AuthorizationServices:
    signing_keys = SigningKeys(sessionmaker, envelope, access_token_ttl=settings.access_token_ttl)
    cimd_fetcher = CimdFetcher(
        ca_bundle=settings.cimd_ca_bundle, allow_loopback=settings.cimd_allow_loopback
    )
    stack.push_async_callback(cimd_fetcher.aclose)
    providers = Providers(settings.identity_providers)
    stack.push_async_callback(providers.aclose)
    await providers.warm_up()  # an unreachable provider is a warning only
    logos = ClientLogos(
        ca_bundle=settings.cimd_ca_bundle, allow_loopback=settings.cimd_allow_loopback
    )
    stack.push_async_callback(logos.aclose)
    # Make sure a signing key exists before the first request: creating one inside a request
    # would need a second write transaction while the request's own is open.
    await signing_keys.active()
    if settings.purge_interval:
        task = asyncio.create_task(_purge_periodically(settings, sessionmaker, signing_keys))
        stack.push_async_callback(_cancel, task)
    return AuthorizationServices(
        signing_keys=signing_keys,
        cimd_fetcher=cimd_fetcher,
        identity_providers=providers,
        client_names=AuthorizeClientNames(cimd_fetcher),
        client_logos=logos,
        client_keys=ClientKeys(cimd_fetcher),
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _purge_periodically(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], keys: SigningKeys
) -> None:
    """Delete expired rows now and then; with jitter, so replicas do not all run at once."""
    while True:
        await asyncio.sleep(settings.purge_interval * (0.5 + secrets.randbelow(1000) / 1000))
        try:
            async with sessionmaker() as session, session.begin():
                counts = await purge(session, settings, keys.publish_window())
            logger.info("purged expired rows: %s", counts)
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("purge failed")


# -- the MCP resource server (roles all, mcp) ------------------------------------------------------


def _install_resource_server(
    app: FastAPI, settings: Settings, connectors: Iterable[Connector], tracing: bool
) -> McpEndpointLike:
    # Imported here, not at the top: role `auth` never loads the MCP SDK
    # (tests/test_roles_imports.py).
    from app.mcp.endpoint import install
    from app.mcp.server import GatehouseMCP
    from app.mcp.tools import register_all

    server = GatehouseMCP(settings, tracing=tracing)
    return install(app, settings, register_all(server, connectors, settings.mcp_toolsets))


async def _start_resource_server(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    authorization: AuthorizationServices | None,
    stack: AsyncExitStack,
) -> ResourceServices:
    check: RevocationCheck | None = None
    if authorization is not None:  # role `all`: our own keys
        verifier: TokenVerifier = LocalTokenVerifier(
            authorization.signing_keys, issuer=settings.issuer, audience=settings.mcp_resource
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
        check = await _introspection_check(settings, http, stack)
    if check is None:
        feed = RevocationFeed(sessionmaker, access_token_ttl=settings.access_token_ttl)
        await feed.poll()
        feed.start()
        stack.push_async_callback(feed.stop)
        check = feed
    return ResourceServices(
        # Each distinct token's signature is checked once; exp, revocation and scopes every time.
        token_verifier=CachingTokenVerifier(verifier),
        revocation_check=check,
        directory=Directory(sessionmaker),
    )


async def _introspection_check(
    settings: Settings, http: httpx.AsyncClient, stack: AsyncExitStack
) -> IntrospectionCheck | None:
    """Role `mcp` with introspection credentials: ask the issuer about each grant."""
    secret = settings.auth_introspection_client_secret
    if not settings.uses_introspection or secret is None:
        return None
    introspection = IntrospectionCheck(
        issuer=settings.auth_issuer_url,
        http=http,
        client_id=settings.auth_introspection_client_id,
        client_secret=secret.get_secret_value(),
        fetch_from=settings.auth_issuer_internal_url,
    )
    await introspection.check_credentials()
    stack.push_async_callback(introspection.close)
    return introspection
