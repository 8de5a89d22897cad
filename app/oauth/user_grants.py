"""Disconnect every app a person connected: revoke all their grants, forget their consents."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.models import OAuthConsent, OAuthGrant
from app.oauth.revocation import revoke_grant


async def revoke_user_grants(
    session: AsyncSession, *, user_id: uuid.UUID, reason: str, ip: str | None = None
) -> int:
    """Revoke every live grant of `user_id` (refresh tokens fail at once, access tokens within
    seconds) and forget remembered consents, so no app reconnects without asking."""
    grant_ids = (
        await session.execute(
            select(OAuthGrant.id).where(
                OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None)
            )
        )
    ).scalars()
    count = 0
    for grant_id in list(grant_ids):
        count += await revoke_grant(session, grant_id, reason=reason, ip=ip, user_id=user_id)
    await session.execute(delete(OAuthConsent).where(OAuthConsent.user_id == user_id))
    return count
