"""Recovery codes: ten single-use codes, shown once, stored only as HMAC hashes."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import RecoveryCode
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.security import hash_token

COUNT = 10
# 10 characters of a 32-letter alphabet: 50 bits each, far beyond what the sign-in limits let
# anyone guess. No 0/o, 1/l/i: codes are copied by hand.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
LENGTH = 10
MAX_INPUT = 64


def _hash(settings: Settings, code: str) -> str:
    return hash_token(settings.secret_key_bytes, code, purpose="recovery-code")


def normalise(code: str) -> str:
    """What the person typed, as stored: lower case, no spaces or dashes."""
    return "".join(ch for ch in code[:MAX_INPUT].lower() if ch not in " -\t\r\n")


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


async def regenerate(session: AsyncSession, settings: Settings, *, user_id: uuid.UUID) -> list[str]:
    """Replace every code of the user with ten new ones; the only time they exist in clear."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_code() for _ in range(COUNT)]
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=_hash(settings, normalise(code))) for code in codes
    )
    await session.flush()
    return codes


async def use(session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, code: str) -> bool:
    """Spend one code; True exactly once per code, even when presented twice at once."""
    code = normalise(code)
    if len(code) != LENGTH:
        return False
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _hash(settings, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result) == 1


async def remaining(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def remove(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
