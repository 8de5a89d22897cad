"""The account's rules on approving an OAuth client, as the authorization server's ApprovalGate.

app/main.py hands `AccountApprovalGate` to the authorization server (app/oauth/consent.py), which
asks it before it shows Approve and again before it issues a code.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.recovery.policy import approval_blocker
from app.config import Settings
from app.oauth.consent import ApprovalBlock


class AccountApprovalGate:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def blocker(self, session: AsyncSession, *, user_id: uuid.UUID) -> ApprovalBlock | None:
        user = await session.get(User, user_id)
        if user is None:
            return None
        reason = approval_blocker(user, self.settings)
        if reason is None:
            return None
        return ApprovalBlock(reason=reason, fix_url="/account", fix_label="Open your account")
