"""The code page after the password, and signing in with a passkey instead of a password."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.deps import sign_in_url
from app.auth.devices import known_device
from app.auth.mfa import options, passkeys, recovery, signin, totp
from app.auth.mfa.signin import SECOND_FACTOR_PAGE, Pending
from app.auth.models import User
from app.auth.signin_limits import Attempt
from app.config import Settings
from app.db import SessionDep
from app.kit.envelope import DecryptionError
from app.kit.ratelimit import Verdict
from app.kit.web import CsrfProtected, FormStr, SettingsDep, client_ip, render, safe_next
from app.state import services_of
from app.telemetry import note, signin_failures

logger = logging.getLogger("gatehouse.mfa")
router = APIRouter(tags=["second factors"])

PASSKEY_SIGN_IN = "/passkey-sign-in"


def _restart(next_path: str = "/account") -> RedirectResponse:
    """Back to the password: the pending sign-in is gone, expired or spent."""
    return RedirectResponse(sign_in_url(next_path), status_code=303)


@dataclass(frozen=True)
class _Waiting:
    """A browser between its password and its second factor."""

    state: Pending
    user: User
    totp_on: bool  # else only a passkey can finish (no code field is shown)


async def _pending_user(
    request: Request, session: AsyncSession, settings: Settings
) -> _Waiting | None:
    state = signin.pending(request, settings)
    if state is None:
        return None
    user = await session.get(User, state.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return _Waiting(state, user, await totp.is_enabled(session, user.id))


class _Limits:
    """The password sign-in's own limits (app/auth/signin_limits.py), so that codes and
    passwords spend one budget: each code is counted before it is checked, as a password is."""

    def __init__(self, request: Request, settings: Settings, user: User | None) -> None:
        self.guard = services_of(request.app).signin_limits
        user_id = user.id if user else None
        self.attempt = Attempt(
            account=user.email.lower()[:320] if user else "",
            ip=client_ip(request) or "unknown",
            user_id=user_id,
            device=known_device(request, settings, user_id),
        )

    async def check(self) -> Verdict:
        return await self.guard.admit(self.attempt)

    async def failed(self, session: AsyncSession) -> None:
        await self.guard.failed(session, self.attempt)

    async def succeeded(self) -> None:
        await self.guard.succeeded(self.attempt)


def _code_page(
    request: Request,
    waiting: _Waiting,
    *,
    error: str = "",
    status_code: int = 200,
    retry_after: int = 0,
) -> HTMLResponse:
    return render(
        request,
        "second_factor.html",
        {"error": error, "totp_on": waiting.totp_on},
        status_code=status_code,
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


def _throttled(request: Request, waiting: _Waiting, verdict: Verdict) -> HTMLResponse:
    minutes = max(1, round(verdict.retry_after / 60))
    note(gatehouse__outcome="failure", gatehouse__reason="throttled")
    signin_failures.add(1, {"gatehouse.reason": "throttled"})
    return _code_page(
        request,
        waiting,
        error=f"Too many failed attempts. Try again in {minutes} minute"
        + ("s." if minutes != 1 else "."),
        status_code=429,
        retry_after=verdict.retry_after,
    )


async def _failed(
    request: Request, session: AsyncSession, limits: _Limits, user: User | None, reason: str
) -> None:
    await limits.failed(session)
    note(gatehouse__outcome="failure", gatehouse__reason=reason)
    signin_failures.add(1, {"gatehouse.reason": reason})
    audit.record(
        session,
        "signin.failure",
        user_id=user.id if user else None,
        ip=client_ip(request),
        reason=reason,
    )


async def _code_checks(
    request: Request, session: AsyncSession, settings: Settings, *, user: User, code: str
) -> bool:
    """A TOTP code (6 digits) or a recovery code (anything else), spent if it checks."""
    if not totp.looks_like_totp(code):
        return await recovery.use(session, settings, user_id=user.id, code=code)
    row = await totp.find(session, user.id)
    if row is None or row.confirmed_at is None:
        return False
    return await totp.verify(session, services_of(request.app).envelope, row=row, code=code)


@dataclass(frozen=True)
class _Attempt:
    """One second factor presented for a pending sign-in that is still allowed to try."""

    request: Request
    session: AsyncSession
    settings: Settings
    waiting: _Waiting
    limits: _Limits

    @property
    def user(self) -> User:
        return self.waiting.user

    async def refuse(self, reason: str, error: str) -> Response:
        """The factor did not check: count it against the budget and ask again."""
        await _failed(self.request, self.session, self.limits, self.user, reason)
        return _code_page(self.request, self.waiting, error=error, status_code=401)

    async def complete(self, method: str) -> Response:
        """The factor checked: spend the pending sign-in once and open the session."""
        request, session, settings = self.request, self.session, self.settings
        state = self.waiting.state
        if not await signin.spend(session, settings, state):
            return _restart(state.next_path)
        await self.limits.succeeded()
        return await signin.finish(
            request, session, settings, user=self.user, next_path=state.next_path, method=method
        )


async def _attempt(
    request: Request, session: AsyncSession, settings: Settings
) -> _Attempt | Response:
    """The browser's pending sign-in and its budget, or the page to answer with instead."""
    found = await _pending_user(request, session, settings)
    if found is None:
        return _restart()
    limits = _Limits(request, settings, found.user)
    verdict = await limits.check()
    if not verdict.allowed:
        return _throttled(request, found, verdict)
    return _Attempt(request, session, settings, found, limits)


@router.get(SECOND_FACTOR_PAGE, response_class=HTMLResponse)
async def second_factor_page(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    found = await _pending_user(request, session, settings)
    if found is None:
        return _restart()
    return _code_page(request, found)


@router.post(SECOND_FACTOR_PAGE, response_class=HTMLResponse, dependencies=[CsrfProtected])
async def second_factor(
    request: Request, session: SessionDep, settings: SettingsDep, code: FormStr = ""
) -> Response:
    attempt = await _attempt(request, session, settings)
    if isinstance(attempt, Response):
        return attempt
    user = attempt.user
    method = "totp" if totp.looks_like_totp(code) else "recovery-code"
    try:
        ok = await _code_checks(request, session, settings, user=user, code=code)
    except DecryptionError:
        # Our fault (a vault key was removed too soon), not the person's: no failure counted.
        logger.warning("a TOTP secret cannot be opened (user %s): check VAULT_KEYS", user.id)
        return _code_page(
            request,
            attempt.waiting,
            error="Authenticator codes cannot be checked right now. Use a recovery code or a "
            "passkey, or try again later.",
            status_code=503,
            retry_after=60,
        )
    if not ok:
        return await attempt.refuse(
            "bad_second_factor",
            "That code is not right, or it was already used. Enter the current code from "
            "your authenticator app, or one of your recovery codes.",
        )
    return await attempt.complete(method)


@router.post(SECOND_FACTOR_PAGE + "/passkey/options", dependencies=[CsrfProtected])
async def second_factor_passkey_options(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    found = await _pending_user(request, session, settings)
    if found is None:
        return Response('{"error":"sign in again"}', 401, media_type="application/json")
    if refused := await options.refusal(request, settings):
        return refused
    made = await passkeys.authentication_options(session, settings, user_id=found.user.id)
    return options.answer(made)


@router.post(SECOND_FACTOR_PAGE + "/passkey", dependencies=[CsrfProtected])
async def second_factor_passkey(
    request: Request, session: SessionDep, settings: SettingsDep, credential: FormStr = ""
) -> Response:
    attempt = await _attempt(request, session, settings)
    if isinstance(attempt, Response):
        return attempt
    user_id = attempt.user.id
    try:
        await passkeys.authenticate(session, settings, credential_json=credential, user_id=user_id)
    except passkeys.PasskeyError as exc:
        return await attempt.refuse("bad_passkey", str(exc))
    return await attempt.complete("passkey")


@router.post(PASSKEY_SIGN_IN + "/options", dependencies=[CsrfProtected])
async def passkey_sign_in_options(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    if refused := await options.refusal(request, settings):
        return refused
    return options.answer(await passkeys.authentication_options(session, settings, user_id=None))


@router.post(PASSKEY_SIGN_IN, response_class=HTMLResponse, dependencies=[CsrfProtected])
async def passkey_sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credential: FormStr = "",
    next: FormStr = "",
) -> Response:
    limits = _Limits(request, settings, None)
    verdict = await limits.check()
    context = {"next": safe_next(next, "")}
    if not verdict.allowed:
        minutes = max(1, round(verdict.retry_after / 60))
        return render(
            request,
            "sign_in.html",
            {**context, "error": f"Too many failed attempts. Try again in {minutes} minutes."},
            status_code=429,
            headers={"Retry-After": str(verdict.retry_after)},
        )
    try:
        row = await passkeys.authenticate(
            session, settings, credential_json=credential, user_id=None
        )
        user = await session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            raise passkeys.PasskeyError("That passkey does not belong to an active account.")
    except passkeys.PasskeyError as exc:
        await _failed(request, session, limits, None, "bad_passkey")
        return render(request, "sign_in.html", {**context, "error": str(exc)}, status_code=401)
    return await signin.finish(
        request, session, settings, user=user, next_path=safe_next(next), method="passkey"
    )
