"""`Services`: the one typed object the routes and /mcp read, built by main.py's lifespan.

A route asks for it by name (`services: ServicesDep`) instead of reading untyped attributes of
`app.state`. The parts that exist only in some roles are typed as optional and reached through
`authorization()` / `resource()`, which say plainly when a role does not serve that part.

Nothing here imports a feature at run time (nor the MCP SDK): role `auth` builds Services too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from app.config import Settings
from app.kit.envelope import Envelope
from app.kit.ratelimit import RateLimits
from app.kit.work_gate import WorkGate
from app.telemetry import Telemetry

if TYPE_CHECKING:
    # Only named here, never imported at run time: every feature reads Services (app/oauth
    # through app/oauth/deps.py), so importing the features from here would tie each one to all
    # the others (tests/oauth/test_layering.py, tests/test_import_graph.py).
    from app.auth.continue_to import ClientNames
    from app.auth.signin_limits import SignInLimits
    from app.connectors.base import Connector
    from app.connectors.cache import ReadCache
    from app.identity.flow import Providers
    from app.mail.outbox import Outbox
    from app.mcp.directory import Directory
    from app.mcp.revocation import RevocationCheck
    from app.mcp.verifiers import TokenVerifier
    from app.oauth.cimd_fetch import CimdFetcher
    from app.oauth.client_keys import ClientKeys
    from app.oauth.consent import ApprovalGate, ConsentExtension
    from app.oauth.logos import ClientLogos
    from app.oauth.signing_keys import SigningKeys


@dataclass(frozen=True)
class AuthorizationServices:
    """What the authorization server keeps for the process's life (roles `all`, `auth`)."""

    signing_keys: SigningKeys
    cimd_fetcher: CimdFetcher
    identity_providers: Providers
    # private_key_jwt clients' public keys (jwks_uri fetched through cimd_fetcher, cached).
    client_keys: ClientKeys
    # The steps other features add to the consent page (app/oauth/consent.py).
    consent_extensions: Sequence[ConsentExtension] = ()
    # The rules other features set on approving a client (app/oauth/consent.py ApprovalGate).
    approval_gates: Sequence[ApprovalGate] = ()
    # Names the client a sign-in is for (app/auth/continue_to.py).
    client_names: ClientNames | None = None
    # Client logos for the consent page, served from our origin (app/oauth/logos.py).
    client_logos: ClientLogos | None = None


@dataclass(frozen=True)
class ResourceServices:
    """What the MCP resource server needs to trust a bearer token (roles `all`, `mcp`)."""

    token_verifier: TokenVerifier
    revocation_check: RevocationCheck
    directory: Directory


class RoleNotServed(RuntimeError):
    """A route asked for a part of the service this process's GATEHOUSE_ROLE does not run."""


@dataclass(frozen=True)
class Services:
    settings: Settings
    telemetry: Telemetry
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    rate_limits: RateLimits
    envelope: Envelope
    connectors: Mapping[str, Connector]
    connector_cache: ReadCache
    outbox: Outbox
    signin_limits: SignInLimits
    password_gate: WorkGate
    authorization_services: AuthorizationServices | None = None
    resource_services: ResourceServices | None = None

    def authorization(self) -> AuthorizationServices:
        if self.authorization_services is None:
            raise RoleNotServed(f"role {self.settings.gatehouse_role} has no authorization server")
        return self.authorization_services

    def resource(self) -> ResourceServices:
        if self.resource_services is None:
            raise RoleNotServed(f"role {self.settings.gatehouse_role} has no resource server")
        return self.resource_services


def publish(app: FastAPI, services: Services) -> None:
    """Make `services` the app's. A few plain attributes stay beside it, for the modules that
    sit below this one (`app.db.get_session` reads `sessionmaker`, `app.kit.web` reads
    `settings`) and for tests that poke at a running app."""
    app.state.services = services
    app.state.sessionmaker = services.sessionmaker
    app.state.engine = services.engine
    app.state.rate_limits = services.rate_limits
    app.state.envelope = services.envelope
    app.state.connectors = services.connectors
    app.state.connector_cache = services.connector_cache
    app.state.outbox = services.outbox
    if services.authorization_services is not None:
        app.state.signing_keys = services.authorization_services.signing_keys


def services_of(app: ASGIApp) -> Services:
    """The Services of a running app (for code that holds the app, not a request)."""
    found = getattr(getattr(app, "state", None), "services", None)
    if not isinstance(found, Services):
        raise RuntimeError("the app has not started: its lifespan builds Services")
    return found


async def services(request: Request) -> Services:
    """The FastAPI dependency: `services: ServicesDep` (async: a plain `def` dependency would
    run in the thread pool, a thread hop per request for an attribute read)."""
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(services)]
