"""The second step of a sign-in: a pending state between the password and the session.

After a right password, a person with a second factor gets no session: a signed cookie
(sign_blob: user id, a single-use nonce, the page to return to; five minutes) sends them to
/second-factor. Only a checked code or passkey turns it into a session, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth import service
from app.auth.deps import SESSION_COOKIE
from app.auth.mfa import challenges
from app.auth.mfa.policy import has_second_factor
from app.auth.models import User
from app.config import Settings
from app.kit.security import new_token, sign_blob, unsign_blob
from app.kit.web import client_ip, cookie_name, delete_cookie, safe_next, set_cookie
from app.telemetry import note

PENDING_COOKIE = "gh_2fa"
PENDING_TTL = 300
PENDING_PURPOSE = "second-factor"
SECOND_FACTOR_PAGE = "/second-factor"


@dataclass(frozen=True)
class Pending:
    user_id: uuid.UUID
    nonce: str
    next_path: str


async def second_step(
    request: Request, session: AsyncSession, settings: Settings, *, user: User, next_path: str
) -> RedirectResponse | None:
    """After a right password: the redirect to the code page, or None if no second factor."""
    if not await has_second_factor(session, user.id):
        return None
    nonce = new_token()
    await challenges.issue(
        session, settings, value=nonce, purpose=PENDING_PURPOSE, user_id=user.id, ttl=PENDING_TTL
    )
    blob = sign_blob(
        settings.secret_key_bytes,
        PENDING_PURPOSE,
        {"u": str(user.id), "n": nonce, "next": next_path},
        ttl=PENDING_TTL,
    )
    audit.record(session, "signin.second_factor", user_id=user.id, ip=client_ip(request))
    note(gatehouse__outcome="second_factor", enduser__id=str(user.id))
    response = RedirectResponse(SECOND_FACTOR_PAGE, status_code=303)
    set_cookie(response, settings, PENDING_COOKIE, blob, max_age=PENDING_TTL)
    return response


def pending(request: Request, settings: Settings) -> Pending | None:
    """The pending sign-in this browser carries, if its cookie is genuine and unexpired."""
    value = request.cookies.get(cookie_name(settings, PENDING_COOKIE), "")
    data = unsign_blob(settings.secret_key_bytes, PENDING_PURPOSE, value)
    if data is None:
        return None
    try:
        user_id = uuid.UUID(str(data["u"]))
        nonce = str(data["n"])
    except (KeyError, ValueError):
        return None
    return Pending(user_id=user_id, nonce=nonce, next_path=safe_next(str(data.get("next", ""))))


async def spend(session: AsyncSession, settings: Settings, state: Pending) -> bool:
    """Use up the pending sign-in; True once (two tabs submitting at once get one session)."""
    return await challenges.consume(
        session, settings, value=state.nonce, purpose=PENDING_PURPOSE, user_id=state.user_id
    )


async def finish(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    *,
    user: User,
    next_path: str,
    method: str,
) -> RedirectResponse:
    """Create the session: the response that sets its cookie and goes on to `next_path`."""
    ip = client_ip(request)
    new = await service.create_session(
        session, settings, user=user, ip=ip, user_agent=request.headers.get("user-agent")
    )
    audit.record(session, "signin.success", user_id=user.id, ip=ip, method=method)
    note(gatehouse__outcome="success", enduser__id=str(user.id))
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, settings, SESSION_COOKIE, new.token, max_age=settings.session_max_ttl)
    delete_cookie(response, settings, PENDING_COOKIE)
    return response
