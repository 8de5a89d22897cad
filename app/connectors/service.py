"""Connecting a credential: rate-limit, validate against the upstream, then seal and store."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connectors.base import (
    Connector,
    CredentialRejected,
    RateLimited,
    UpstreamError,
)
from app.connectors.cache import ReadCache
from app.kit.envelope import Envelope, SecretValue
from app.kit.ratelimit import RateLimits
from app.vault import service as vault

MAX_SECRET_LENGTH = 4096


class CredentialProblem(Exception):
    """Why a credential was not accepted, in words for the form."""


async def connect(
    session: AsyncSession,
    *,
    settings: Settings,
    limits: RateLimits,
    envelope: Envelope,
    cache: ReadCache,
    connector: Connector,
    user_id: uuid.UUID,
    secret_text: str,
    ip: str | None,
) -> None:
    secret_text = secret_text.strip()
    if not secret_text:
        raise CredentialProblem(f"Paste your {connector.credential.label}.")
    if len(secret_text) > MAX_SECRET_LENGTH or any(ch.isspace() for ch in secret_text):
        raise CredentialProblem(f"That does not look like a {connector.credential.label}.")
    for verdict in (
        await limits.hit(limits.rule(settings.credential_limit_user), "cred-user", str(user_id)),
        await limits.hit(limits.rule(settings.credential_limit_ip), "cred-ip", ip or "?"),
    ):
        if not verdict.allowed:
            minutes = max(1, round(verdict.retry_after / 60))
            raise CredentialProblem(
                f"Too many attempts to connect a credential. Try again in {minutes} min."
            )
    secret = SecretValue(secret_text)
    try:
        account = await connector.validate(secret)
    except CredentialRejected as exc:
        raise CredentialProblem(
            f"{connector.label} did not accept that {connector.credential.label} ({exc})."
        ) from exc
    except RateLimited as exc:
        raise CredentialProblem(
            f"{connector.label} is rate-limiting this account; try again later."
        ) from exc
    except UpstreamError as exc:
        raise CredentialProblem(
            f"{connector.label} could not check the credential: {exc}. Try again later."
        ) from exc
    await vault.store(
        session,
        envelope,
        user_id=user_id,
        connector=connector.name,
        secret=secret,
        upstream_account=account,
        ip=ip,
    )
    await cache.drop(str(user_id), connector.name)


async def disconnect(
    session: AsyncSession,
    *,
    cache: ReadCache,
    connector: str,
    user_id: uuid.UUID,
    ip: str | None,
) -> bool:
    removed = await vault.remove(session, user_id=user_id, connector=connector, ip=ip)
    await cache.drop(str(user_id), connector)
    return removed
