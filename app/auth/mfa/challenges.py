"""Single-use, short-lived server-side values: WebAuthn challenges and pending sign-ins."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import MfaChallenge
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.security import hash_token


def challenge_hash(settings: Settings, value: str) -> str:
    return hash_token(settings.secret_key_bytes, value, purpose="mfa-challenge")


async def issue(
    session: AsyncSession,
    settings: Settings,
    *,
    value: str,
    purpose: str,
    user_id: uuid.UUID | None,
    ttl: int,
) -> None:
    """Remember `value` (by its hash) as a challenge for `purpose`, valid for `ttl` seconds."""
    session.add(
        MfaChallenge(
            challenge_hash=challenge_hash(settings, value),
            purpose=purpose,
            user_id=user_id,
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    await session.flush()


async def consume(
    session: AsyncSession,
    settings: Settings,
    *,
    value: str,
    purpose: str,
    user_id: uuid.UUID | None,
) -> bool:
    """Mark the challenge used; True exactly once, for an unexpired challenge of this purpose.

    One conditional UPDATE: of two concurrent uses (on any replicas), only one sees a row.
    `user_id=None` means "any user" (a discoverable passkey sign-in names nobody up front).
    """
    now = utcnow()
    stmt = (
        update(MfaChallenge)
        .where(
            MfaChallenge.challenge_hash == challenge_hash(settings, value),
            MfaChallenge.purpose == purpose,
            MfaChallenge.used_at.is_(None),
            MfaChallenge.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if user_id is not None:
        stmt = stmt.where(MfaChallenge.user_id == user_id)
    result = await session.execute(stmt)
    return rows_affected(result) == 1


async def purge(session: AsyncSession) -> int:
    """Delete expired challenges (called by the periodic purge)."""
    result = await session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at <= utcnow()))
    return rows_affected(result)
