"""Single-use links: a random 256-bit token in the link, only its HMAC in `account_tokens`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.recovery.models import AccountToken
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.security import hash_token, new_token

Purpose = Literal["verify_email", "reset_password", "admin_reset_password", "change_email"]
LIFETIMES: dict[Purpose, timedelta] = {
    "verify_email": timedelta(hours=24),
    "reset_password": timedelta(minutes=30),
    # Handed over by an administrator (`gatehouse users reset-password`): it never went through
    # the mailbox, so using it says nothing about who reads the address.
    "admin_reset_password": timedelta(minutes=30),
    "change_email": timedelta(hours=24),
}
MAX_TOKEN_LENGTH = 128


def token_hash(settings: Settings, token: str, purpose: Purpose) -> str:
    # The purpose is part of the HMAC: a verification token can never pass as a reset token.
    return hash_token(settings.secret_key_bytes, token, purpose=f"account:{purpose}")


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_url}{path}?{urlencode({'token': token})}"


async def issue(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    purpose: Purpose,
    new_email: str | None = None,
) -> str:
    """A new link token for `user_id`; returned once, stored only as its hash."""
    token = new_token()
    now = utcnow()
    session.add(
        AccountToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=token_hash(settings, token, purpose),
            new_email=new_email,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    await session.flush()
    return token


async def peek(
    session: AsyncSession, settings: Settings, *, token: str, purposes: tuple[Purpose, ...]
) -> AccountToken | None:
    """The live (unused, unexpired) token row, without using it: for the page before the POST."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    hashes = [token_hash(settings, token, purpose) for purpose in purposes]
    stmt = select(AccountToken).where(
        AccountToken.token_hash.in_(hashes),
        AccountToken.used_at.is_(None),
        AccountToken.expires_at > utcnow(),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def consume(
    session: AsyncSession, settings: Settings, *, token: str, purpose: Purpose
) -> AccountToken | None:
    """Use the token, once: of two concurrent uses exactly one gets the row, the other None.

    A conditional UPDATE is atomic on both databases; under PostgreSQL the second writer waits
    on the row lock, re-checks `used_at IS NULL` after the first commits, and matches nothing.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(settings, token, purpose)
    now = utcnow()
    result = await session.execute(
        update(AccountToken)
        .where(
            AccountToken.token_hash == digest,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rows_affected(result) != 1:
        return None
    row = await session.execute(select(AccountToken).where(AccountToken.token_hash == digest))
    return row.scalar_one()


async def retire(
    session: AsyncSession, *, user_id: uuid.UUID, purposes: tuple[Purpose, ...]
) -> int:
    """Mark every outstanding token of these purposes used (a newer event made them moot)."""
    result = await session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose.in_(purposes),
            AccountToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result)


async def purge(session: AsyncSession, *, keep: timedelta = timedelta(days=1)) -> int:
    """Delete links that can never be used again (expired or used more than `keep` ago)."""
    cutoff = utcnow() - keep
    result = await session.execute(
        delete(AccountToken).where(
            (AccountToken.expires_at < cutoff) | (AccountToken.used_at < cutoff)
        )
    )
    return rows_affected(result)
