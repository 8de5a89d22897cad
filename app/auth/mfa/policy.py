"""Who has a second factor, REQUIRE_MFA, and the admin's reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import BindParameter, Select, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.mfa import passkeys, recovery, totp
from app.auth.mfa.models import TotpFactor, WebAuthnCredential
from app.auth.models import User
from app.config import Settings

SECURITY_PAGE = "/account/security"


def _has_second_factor() -> Select[tuple[bool]]:
    user_id: BindParameter[uuid.UUID] = bindparam("user_id")
    confirmed_totp = exists().where(
        TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
    )
    passkey = exists().where(WebAuthnCredential.user_id == user_id)
    return select(or_(confirmed_totp, passkey))


# Built once (app/oauth/issuance.py's _REFRESH_BY_HASH): every right password asks it, on the
# event loop, and one statement is one round trip where two were.
_HAS_SECOND_FACTOR = _has_second_factor()


async def has_second_factor(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """A confirmed TOTP or at least one passkey."""
    return bool((await session.execute(_HAS_SECOND_FACTOR, {"user_id": user_id})).scalar_one())


async def approval_blocker(session: AsyncSession, user: User, settings: Settings) -> str | None:
    """Why this person may not approve an OAuth client yet, or None when they may.

    REQUIRE_MFA=true: approving a client needs a second factor (TOTP or a passkey). The
    consent page shows the reason, which names the page where it is fixed.
    """
    if not settings.require_mfa or await has_second_factor(session, user.id):
        return None
    return (
        "This service requires two-factor sign-in before you can approve an app. Turn on an "
        f"authenticator app or add a passkey at {SECURITY_PAGE}, then try again."
    )


@dataclass(frozen=True)
class FactorSummary:
    totp: bool
    passkeys: int


async def summaries(session: AsyncSession) -> dict[uuid.UUID, FactorSummary]:
    """Each user's second factors, for `gatehouse users list` (users with none are absent)."""
    enabled = set(
        (
            await session.execute(
                select(TotpFactor.user_id).where(TotpFactor.confirmed_at.is_not(None))
            )
        ).scalars()
    )
    grouped = select(WebAuthnCredential.user_id, func.count()).group_by(WebAuthnCredential.user_id)
    counts = {user_id: int(count) for user_id, count in (await session.execute(grouped)).all()}
    return {
        user_id: FactorSummary(totp=user_id in enabled, passkeys=int(counts.get(user_id, 0)))
        for user_id in enabled | set(counts)
    }


async def reset(session: AsyncSession, *, user: User, actor: str) -> int:
    """Remove every second factor of the user (lost phone and codes); audited. The count."""
    had_totp = await totp.remove(session, user_id=user.id)
    await recovery.remove(session, user_id=user.id)
    removed = await passkeys.remove_all(session, user_id=user.id)
    audit.record(
        session, "mfa.reset", user_id=user.id, actor=actor, totp=had_totp, passkeys=removed
    )
    return removed + int(had_totp)
