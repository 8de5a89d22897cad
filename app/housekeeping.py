"""Housekeeping: each feature deletes its own rows that can never be used again.

Idempotent, so any number of replicas may run it (the CLI's `purge`, and the periodic purge in
app/main.py).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa import challenges as mfa_challenges
from app.auth.purge import purge_sessions
from app.auth.recovery.tokens import purge as purge_account_links
from app.config import Settings
from app.identity.service import purge_used_states
from app.oauth.purge import purge_oauth


async def purge(session: AsyncSession, settings: Settings, key_window: timedelta) -> dict[str, int]:
    """Every feature's purge; returns how many rows each kind lost, by name."""
    counts = await purge_oauth(session, settings=settings, key_window=key_window)
    counts |= await purge_sessions(session)
    counts["account_links"] = await purge_account_links(session)
    counts["mfa_challenges"] = await mfa_challenges.purge(session)
    counts["identity_used_states"] = await purge_used_states(session)
    return counts
