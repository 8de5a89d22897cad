"""The account's rules on approving an OAuth client, as the authorization server's ApprovalGate.

app/main.py hands `AccountApprovalGate` to the authorization server (app/oauth/consent.py), which
asks it before it shows Approve and again before it issues a code.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa import policy as mfa_policy
from app.auth.mfa.policy import SECURITY_PAGE
from app.auth.models import User
from app.auth.recovery import policy as email_policy
from app.config import Settings
from app.oauth.consent import ApprovalBlock


class AccountApprovalGate:
    """REQUIRE_VERIFIED_EMAIL first (the address is how the person recovers the account), then
    REQUIRE_MFA."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def blocker(self, session: AsyncSession, *, user_id: uuid.UUID) -> ApprovalBlock | None:
        user = await session.get(User, user_id)
        if user is None:
            return None
        reason = email_policy.approval_blocker(user, self.settings)
        if reason is not None:
            return ApprovalBlock(reason=reason, fix_url="/account", fix_label="Open your account")
        reason = await mfa_policy.approval_blocker(session, user, self.settings)
        if reason is not None:
            return ApprovalBlock(
                reason=reason, fix_url=SECURITY_PAGE, fix_label="Set up two-factor sign-in"
            )
        return None
