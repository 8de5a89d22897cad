"""May this person approve an OAuth client now? One function the consent code asks."""

from __future__ import annotations

from app.auth.models import User
from app.config import Settings


def approval_blocker(user: User, settings: Settings) -> str | None:
    """Why `user` may not approve a client yet (text for the consent page), or None.

    REQUIRE_VERIFIED_EMAIL: an unverified person can sign in but not hand out access. (The
    second-factor requirement, REQUIRE_MFA, belongs here too.)
    """
    if settings.require_verified_email and user.email_verified_at is None:
        return (
            f"Before you connect an app, confirm that {user.email} is your address: open the "
            "link we emailed you, or send a new one."
        )
    return None
