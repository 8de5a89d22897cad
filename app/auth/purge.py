"""The auth feature's own rows that can never be used again (see app/housekeeping.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import BrowserSession
from app.db import rows_affected, utcnow


async def purge_sessions(session: AsyncSession) -> dict[str, int]:
    """Delete browser sessions a day after they expired, went idle or were revoked."""
    cutoff = utcnow() - timedelta(days=1)
    result = await session.execute(
        delete(BrowserSession).where(
            (BrowserSession.expires_at < cutoff)
            | (BrowserSession.idle_expires_at < cutoff)
            | (BrowserSession.revoked_at < cutoff)
        )
    )
    return {"sessions": rows_affected(result)}
