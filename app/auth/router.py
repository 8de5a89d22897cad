"""Sign-up, sign-in, sign-out and the account page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth import service
from app.auth.continue_to import continue_to
from app.auth.deps import (
    SESSION_COOKIE,
    CurrentBrowserSession,
    CurrentUser,
    OptionalBrowserSession,
)
from app.auth.models import BrowserSession
from app.config import Settings
from app.db import SessionDep
from app.errors import NotFoundError
from app.kit.web import (
    CsrfProtected,
    SettingsDep,
    client_ip,
    delete_cookie,
    render,
    safe_next,
    set_cookie,
)
from app.state import ServicesDep
from app.telemetry import note, signin_failures, traced

router = APIRouter(tags=["accounts"])

FormStr = Annotated[str, Form()]


def _signed_in_redirect(
    settings: Settings, new: service.NewSession, next_path: str
) -> RedirectResponse:
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, settings, SESSION_COOKIE, new.token, max_age=settings.session_max_ttl)
    return response


def _auditable(email: str) -> str | None:
    """The typed email, for the audit log, unless it could be a password typed in the wrong box."""
    return email if service.email_problem(email) is None else None


@router.get("/", include_in_schema=False)
async def home(browser: OptionalBrowserSession) -> RedirectResponse:
    return RedirectResponse("/account" if browser else "/sign-in", status_code=303)


@router.get("/sign-up", response_class=HTMLResponse)
async def sign_up_page(
    request: Request,
    *,
    settings: SettingsDep,
    browser: OptionalBrowserSession,
    services: ServicesDep,
    session: SessionDep,
    next: str = "",
) -> Response:
    if not settings.allow_signup:
        raise NotFoundError("Sign-up is closed here. Ask an administrator for an account.")
    if browser is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    client = await continue_to(services, session, safe_next(next, ""))
    return render(request, "sign_up.html", {"next": safe_next(next, ""), "continue_to": client})


@router.post("/sign-up", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.sign_up")
async def sign_up(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    services: ServicesDep,
    email: FormStr = "",
    password: FormStr = "",
    name: FormStr = "",
    next: FormStr = "",
) -> Response:
    if not settings.allow_signup:
        raise NotFoundError("Sign-up is closed here. Ask an administrator for an account.")
    ip = client_ip(request)
    limits = services.rate_limits
    # Each sign-up costs an argon2 hash (64 MiB, tens of ms): bound them per address.
    verdict = await limits.hit(limits.rule(settings.signup_limit_ip), "signup-ip", ip or "?")
    if not verdict.allowed:
        return render(
            request,
            "sign_up.html",
            {
                "error": "Too many new accounts from this address. Try again later.",
                "email": email,
                "name": name,
                "next": safe_next(next, ""),
            },
            status_code=429,
            headers={"Retry-After": str(verdict.retry_after)},
        )
    try:
        user = await service.create_user(session, email=email, password=password, name=name, ip=ip)
    except service.AccountError as exc:
        return render(
            request,
            "sign_up.html",
            {"error": str(exc), "email": email, "name": name, "next": safe_next(next, "")},
            status_code=400,
        )
    new = await service.create_session(
        session, settings, user=user, ip=ip, user_agent=request.headers.get("user-agent")
    )
    audit.record(session, "signin.success", user_id=user.id, ip=ip, method="sign-up")
    return _signed_in_redirect(settings, new, safe_next(next, "/connect"))


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request,
    browser: OptionalBrowserSession,
    services: ServicesDep,
    session: SessionDep,
    next: str = "",
) -> Response:
    if browser is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    client = await continue_to(services, session, safe_next(next, ""))
    return render(request, "sign_in.html", {"next": safe_next(next, ""), "continue_to": client})


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.sign_in")
async def sign_in(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    services: ServicesDep,
    email: FormStr = "",
    password: FormStr = "",
    next: FormStr = "",
) -> Response:
    limits = services.rate_limits
    ip = client_ip(request) or "unknown"
    account_key = service.normalise_email(email).lower()[:320]
    per_account = limits.rule(settings.signin_limit_account)
    per_ip = limits.rule(settings.signin_limit_ip)
    context = {"email": email, "next": safe_next(next, "")}

    for verdict in (
        await limits.check(per_account, "signin-account", account_key),
        await limits.check(per_ip, "signin-ip", ip),
    ):
        if not verdict.allowed:
            audit.record(session, "signin.throttled", ip=ip, email=_auditable(account_key))
            note(gatehouse__outcome="failure", gatehouse__reason="throttled")
            signin_failures.add(1, {"gatehouse.reason": "throttled"})
            return _throttled_page(request, context, verdict.retry_after)

    user = await service.authenticate(session, email=email, password=password)
    if user is None:
        await limits.hit(per_account, "signin-account", account_key)
        await limits.hit(per_ip, "signin-ip", ip)
        await _record_failure(session, email=email, account_key=account_key, ip=ip)
        return render(
            request,
            "sign_in.html",
            {**context, "error": "That email and password do not match an active account."},
            status_code=401,
        )
    await limits.clear(per_account, "signin-account", account_key)
    new = await service.create_session(
        session, settings, user=user, ip=ip, user_agent=request.headers.get("user-agent")
    )
    audit.record(session, "signin.success", user_id=user.id, ip=ip)
    note(gatehouse__outcome="success", enduser__id=str(user.id))
    return _signed_in_redirect(settings, new, safe_next(next))


def _throttled_page(request: Request, context: dict[str, str], retry_after: int) -> Response:
    minutes = max(1, round(retry_after / 60))
    return render(
        request,
        "sign_in.html",
        {
            **context,
            "error": f"Too many failed attempts. Try again in {minutes} minute"
            + ("s." if minutes != 1 else "."),
        },
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


async def _record_failure(session: AsyncSession, *, email: str, account_key: str, ip: str) -> None:
    known = await service.find_user_by_email(session, email)
    reason = "disabled" if known and known.disabled_at else "bad_credentials"
    note(gatehouse__outcome="failure", gatehouse__reason=reason)
    signin_failures.add(1, {"gatehouse.reason": reason})
    audit.record(
        session,
        "signin.failure",
        user_id=known.id if known else None,
        ip=ip,
        email=_auditable(account_key),
        reason=reason,
    )


@router.post("/sign-out", dependencies=[CsrfProtected])
async def sign_out(
    request: Request, session: SessionDep, settings: SettingsDep, browser: OptionalBrowserSession
) -> RedirectResponse:
    if browser is not None:
        service.revoke_session(browser)
        audit.record(session, "signout", user_id=browser.user_id, ip=client_ip(request))
    response = RedirectResponse("/sign-in", status_code=303)
    delete_cookie(response, settings, SESSION_COOKIE)
    return response


async def _account_page(
    request: Request,
    session: SessionDep,
    browser: BrowserSession,
    *,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    sessions = await service.active_sessions(session, user_id=browser.user_id)
    return render(
        request,
        "account.html",
        {"user": browser.user, "sessions": sessions, "this_session": browser.id, **context},
        status_code=status_code,
    )


@router.get("/account", response_class=HTMLResponse)
async def account(
    request: Request, session: SessionDep, browser: CurrentBrowserSession, notice: str = ""
) -> HTMLResponse:
    notices = {
        "password": "Your password was changed. Your other sessions were signed out.",
        "sessions": "Your other sessions were signed out.",
        "session": "That session was signed out.",
        "profile": "Your profile was saved.",
    }
    return await _account_page(request, session, browser, notice=notices.get(notice, ""))


@router.post("/account/profile", dependencies=[CsrfProtected])
async def update_profile(
    request: Request, session: SessionDep, browser: CurrentBrowserSession, name: FormStr = ""
) -> Response:
    name = name.strip()
    if len(name) > 200:
        return await _account_page(
            request,
            session,
            browser,
            status_code=400,
            profile_error="Use at most 200 characters for the name.",
        )
    browser.user.name = name
    return RedirectResponse("/account?notice=profile", status_code=303)


@router.post("/account/sessions/revoke-others", dependencies=[CsrfProtected])
async def revoke_other_sessions(
    request: Request, session: SessionDep, browser: CurrentBrowserSession
) -> RedirectResponse:
    count = await service.revoke_user_sessions(session, user_id=browser.user_id, keep=browser.id)
    audit.record(
        session, "sessions.revoked", user_id=browser.user_id, ip=client_ip(request), count=count
    )
    return RedirectResponse("/account?notice=sessions", status_code=303)


@router.post("/account/sessions/{session_id}/revoke", dependencies=[CsrfProtected])
async def revoke_one_session(
    session_id: uuid.UUID, request: Request, session: SessionDep, browser: CurrentBrowserSession
) -> RedirectResponse:
    target = await service.find_user_session(
        session, user_id=browser.user_id, session_id=session_id
    )
    if target is None:
        raise NotFoundError("That session does not exist or is not yours.")
    service.revoke_session(target)
    audit.record(session, "session.revoked", user_id=browser.user_id, ip=client_ip(request))
    if target.id == browser.id:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse("/account?notice=session", status_code=303)


@router.post("/account/password", dependencies=[CsrfProtected])
async def change_password(
    *,
    request: Request,
    session: SessionDep,
    browser: CurrentBrowserSession,
    user: CurrentUser,
    current_password: FormStr = "",
    new_password: FormStr = "",
) -> Response:
    try:
        await service.change_password(
            session,
            user=user,
            current_password=current_password,
            new_password=new_password,
            keep_session=browser.id,
            ip=client_ip(request),
        )
    except service.AccountError as exc:
        return await _account_page(
            request, session, browser, status_code=400, password_error=str(exc)
        )
    return RedirectResponse("/account?notice=password", status_code=303)
