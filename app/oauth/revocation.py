"""Revoking grants (RFC 7009 and every other way a grant ends), and finding a token's grant."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import rows_affected, utcnow
from app.oauth.access_tokens import InvalidAccessToken
from app.oauth.issuance import find_refresh_token
from app.oauth.models import OAuthGrant
from app.oauth.signing_keys import SigningKeys


async def revoke_grant(
    session: AsyncSession,
    grant_id: uuid.UUID,
    *,
    reason: str,
    ip: str | None = None,
    user_id: uuid.UUID | None = None,
) -> bool:
    """Revoke the grant: its refresh tokens fail at once, its access tokens within seconds."""
    result = await session.execute(
        update(OAuthGrant)
        .where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    changed = rows_affected(result) > 0
    if changed:
        audit.record(
            session, "grant.revoked", user_id=user_id, ip=ip, grant_id=str(grant_id), reason=reason
        )
    return changed


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def _grant_by_access_token(
    session: AsyncSession, settings: Settings, keys: SigningKeys, token: str
) -> OAuthGrant | None:
    try:
        claims = await keys.verify(token, issuer=settings.issuer, audience=settings.mcp_resource)
    except InvalidAccessToken:
        return None
    return await session.get(OAuthGrant, uuid.UUID(claims.grant_id))


async def _grant_by_refresh_token(
    session: AsyncSession, settings: Settings, token: str
) -> OAuthGrant | None:
    row = await find_refresh_token(session, settings.secret_key_bytes, token)
    return row.grant if row else None


async def grant_for_token(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    token: str,
    hint: str | None,
) -> OAuthGrant | None:
    """The grant a refresh or access token belongs to; RFC 7009 §2.1: the hint orders the search."""
    access_first = hint == "access_token" or looks_like_jwt(token)
    if access_first:
        grant = await _grant_by_access_token(session, settings, keys, token)
        return grant or await _grant_by_refresh_token(session, settings, token)
    grant = await _grant_by_refresh_token(session, settings, token)
    return grant or await _grant_by_access_token(session, settings, keys, token)
