"""/account/security: TOTP enrolment, recovery codes, passkeys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.deps import CurrentUser
from app.auth.mfa import options, passkeys, recovery, totp
from app.auth.mfa.policy import SECURITY_PAGE, has_second_factor
from app.auth.models import User
from app.auth.passwords import MAX_PASSWORD_LENGTH, verify_password
from app.config import Settings
from app.db import SessionDep
from app.kit.envelope import Envelope
from app.kit.web import CsrfProtected, FormStr, SettingsDep, client_ip, render
from app.state import services_of

router = APIRouter(tags=["second factors"])

NOTICES = {
    "totp-off": "Two-factor sign-in with an authenticator app is off.",
    "passkey-added": "Your passkey was added.",
    "passkey-removed": "That passkey was removed.",
}


def _envelope(request: Request) -> Envelope:
    return services_of(request.app).envelope


@dataclass(frozen=True)
class SecurityPage:
    """The signed-in person's security page, and what the routes that answer with it use."""

    request: Request
    session: AsyncSession
    settings: Settings
    user: User

    async def show(self, *, status_code: int = 200, **context: object) -> HTMLResponse:
        session, settings, user = self.session, self.settings, self.user
        row = await totp.find(session, user.id)
        enrolment = None
        if row is not None and row.confirmed_at is None:
            enrolment = await totp.enrolment(_envelope(self.request), row, account=user.email)
        mfa_missing = settings.require_mfa and not await has_second_factor(session, user.id)
        return render(
            self.request,
            "security.html",
            {
                "user": user,
                "totp_on": row is not None and row.confirmed_at is not None,
                "enrolment": enrolment,
                "codes_left": await recovery.remaining(session, user_id=user.id),
                "passkeys": await passkeys.for_user(session, user.id),
                "passkeys_available": passkeys.relying_party(settings).available,
                "passkeys_unavailable": passkeys.UNAVAILABLE,
                "mfa_required": mfa_missing,
                **context,
            },
            status_code=status_code,
        )

    async def refuse(self, **error: str) -> HTMLResponse:
        """The page again, 400, with one form's error (`totp_error=...`, `passkey_error=...`)."""
        return await self.show(status_code=400, **error)


async def security_page_for(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> SecurityPage:
    return SecurityPage(request, session, settings, user)


SecurityPageDep = Annotated[SecurityPage, Depends(security_page_for)]


@router.get(SECURITY_PAGE, response_class=HTMLResponse)
async def security_page(page: SecurityPageDep, notice: str = "") -> HTMLResponse:
    return await page.show(notice=NOTICES.get(notice, ""))


@router.post(SECURITY_PAGE + "/totp", dependencies=[CsrfProtected])
async def start_totp(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    if await totp.is_enabled(session, user.id):
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    await totp.start(session, _envelope(request), user_id=user.id)
    return RedirectResponse(SECURITY_PAGE + "#totp", status_code=303)


@router.post(SECURITY_PAGE + "/totp/confirm", dependencies=[CsrfProtected])
async def confirm_totp(request: Request, page: SecurityPageDep, code: FormStr = "") -> Response:
    session, user = page.session, page.user
    row = await totp.find(session, user.id)
    if row is None or row.confirmed_at is not None:
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    if not await totp.confirm(session, _envelope(request), row=row, code=code):
        return await page.refuse(
            totp_error="That code is not right. Enter the 6-digit code your app shows now."
        )
    codes = await recovery.regenerate(session, page.settings, user_id=user.id)
    audit.record(session, "mfa.totp.enabled", user_id=user.id, ip=client_ip(request))
    return await page.show(new_codes=codes)


@router.post(SECURITY_PAGE + "/recovery-codes", dependencies=[CsrfProtected])
async def regenerate_codes(request: Request, page: SecurityPageDep) -> Response:
    session, user = page.session, page.user
    if not await totp.is_enabled(session, user.id):
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    codes = await recovery.regenerate(session, page.settings, user_id=user.id)
    audit.record(session, "mfa.recovery_codes.regenerated", user_id=user.id, ip=client_ip(request))
    return await page.show(new_codes=codes)


@router.post(SECURITY_PAGE + "/totp/disable", dependencies=[CsrfProtected])
async def disable_totp(
    request: Request, page: SecurityPageDep, *, password: FormStr = "", code: FormStr = ""
) -> Response:
    session, settings, user = page.session, page.settings, page.user
    row = await totp.find(session, user.id)
    if row is None or row.confirmed_at is None:
        return RedirectResponse(SECURITY_PAGE, status_code=303)
    limits = services_of(request.app).rate_limits
    per_account = limits.rule(settings.signin_limit_account)
    key = user.email.lower()
    # Counted before it is checked (hit, then work), against the sign-in budget: concurrent
    # guesses cannot all pass a check made before any of them was counted.
    verdict = await limits.hit(per_account, "signin-account", key)
    ok = False
    if verdict.allowed:
        too_long = len(password) > MAX_PASSWORD_LENGTH
        good_password, _ = await verify_password(
            password[:MAX_PASSWORD_LENGTH], None if too_long else user.password_hash
        )
        # The code only after the password: a wrong password must not spend a good code.
        ok = good_password and await totp.verify(session, _envelope(request), row=row, code=code)
    if not ok:
        return await page.show(
            status_code=429 if not verdict.allowed else 400,
            disable_error="Too many attempts. Try again later."
            if not verdict.allowed
            else "Enter your password and a current code from your app to turn this off.",
        )
    await totp.remove(session, user_id=user.id)
    await recovery.remove(session, user_id=user.id)
    audit.record(session, "mfa.totp.disabled", user_id=user.id, ip=client_ip(request))
    return RedirectResponse(SECURITY_PAGE + "?notice=totp-off", status_code=303)


@router.post(SECURITY_PAGE + "/passkeys/options", dependencies=[CsrfProtected])
async def passkey_registration_options(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    if refused := await options.refusal(request, settings):
        return refused
    return options.answer(await passkeys.registration_options(session, settings, user=user))


@router.post(SECURITY_PAGE + "/passkeys", dependencies=[CsrfProtected])
async def add_passkey(
    request: Request, page: SecurityPageDep, *, credential: FormStr = "", name: FormStr = ""
) -> Response:
    session, user = page.session, page.user
    if not credential:
        return await page.refuse(
            passkey_error="Adding a passkey needs JavaScript: allow it for this site, try again."
        )
    try:
        row = await passkeys.register(
            session, page.settings, user=user, credential_json=credential, name=name
        )
    except passkeys.PasskeyError as exc:
        return await page.refuse(passkey_error=str(exc))
    audit.record(
        session, "mfa.passkey.added", user_id=user.id, ip=client_ip(request), passkey=str(row.id)
    )
    return RedirectResponse(SECURITY_PAGE + "?notice=passkey-added", status_code=303)


@router.post(SECURITY_PAGE + "/passkeys/{passkey_id}/delete", dependencies=[CsrfProtected])
async def remove_passkey(
    passkey_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    if await passkeys.remove(session, user_id=user.id, passkey_id=passkey_id):
        audit.record(
            session,
            "mfa.passkey.removed",
            user_id=user.id,
            ip=client_ip(request),
            passkey=str(passkey_id),
        )
    return RedirectResponse(SECURITY_PAGE + "?notice=passkey-removed", status_code=303)
