"""Named dependencies for the authorization server's routes, read from the typed Services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import SessionDep
from app.kit.envelope import Envelope
from app.kit.ratelimit import RateLimits
from app.kit.web import SettingsDep
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.clients import ClientVerifiers
from app.oauth.consent import ApprovalGate, ConsentExtension
from app.oauth.logos import ClientLogos
from app.oauth.signing_keys import SigningKeys
from app.state import ServicesDep


async def get_fetcher(services: ServicesDep) -> CimdFetcher:
    return services.authorization().cimd_fetcher


async def get_client_verifiers(services: ServicesDep) -> ClientVerifiers:
    issuer = services.settings.issuer
    return ClientVerifiers(
        secret_key=services.settings.secret_key_bytes,
        fetcher=services.authorization().cimd_fetcher,
        keys=services.authorization().client_keys,
        # RFC 7523 §3: aud identifies us — the issuer, or the token endpoint URL (OIDC Core §9:
        # "SHOULD be the URL of the Authorization Server's Token Endpoint").
        audiences=frozenset({issuer, f"{issuer}/token"}),
    )


async def get_signing_keys(services: ServicesDep) -> SigningKeys:
    return services.authorization().signing_keys


async def get_envelope(services: ServicesDep) -> Envelope:
    return services.envelope


async def get_rate_limits(services: ServicesDep) -> RateLimits:
    return services.rate_limits


async def get_consent_extensions(services: ServicesDep) -> Sequence[ConsentExtension]:
    return services.authorization().consent_extensions


async def get_approval_gates(services: ServicesDep) -> Sequence[ApprovalGate]:
    return services.authorization().approval_gates


async def get_client_logos(services: ServicesDep) -> ClientLogos | None:
    return services.authorization().client_logos


FetcherDep = Annotated[CimdFetcher, Depends(get_fetcher)]
ClientLogosDep = Annotated[ClientLogos | None, Depends(get_client_logos)]
ClientVerifiersDep = Annotated[ClientVerifiers, Depends(get_client_verifiers)]
SigningKeysDep = Annotated[SigningKeys, Depends(get_signing_keys)]
EnvelopeDep = Annotated[Envelope, Depends(get_envelope)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
ConsentExtensionsDep = Annotated[Sequence[ConsentExtension], Depends(get_consent_extensions)]
ApprovalGatesDep = Annotated[Sequence[ApprovalGate], Depends(get_approval_gates)]


@dataclass(frozen=True)
class Authorizer:
    """What /authorize and /consent decide a request with: the database, the settings, the
    client metadata fetcher, the consent steps other features add and the rules that can hold
    an approval back."""

    session: AsyncSession
    settings: Settings
    fetcher: CimdFetcher
    extensions: Sequence[ConsentExtension]
    gates: Sequence[ApprovalGate]


async def get_authorizer(
    session: SessionDep,
    settings: SettingsDep,
    fetcher: FetcherDep,
    extensions: ConsentExtensionsDep,
    gates: ApprovalGatesDep,
) -> Authorizer:
    return Authorizer(session, settings, fetcher, extensions, gates)


AuthorizerDep = Annotated[Authorizer, Depends(get_authorizer)]
