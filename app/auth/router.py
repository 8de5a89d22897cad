"""Sign-up, sign-in, sign-out and the account page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import audit
from app.auth import service
from app.auth.continue_to import continue_to
from app.auth.deps import (
    SESSION_COOKIE,
    CurrentBrowserSession,
    CurrentUser,
    OptionalBrowserSession,
    optional_browser_session,
    session_cookie,
    signed_in_redirect,
)
from app.auth.devices import known_device, remember_device
from app.auth.mfa import signin as mfa_signin
from app.auth.models import BrowserSession
from app.auth.recovery.service import send_verification
from app.auth.signin_limits import Attempt
from app.db import SessionDep, unit_of_work
from app.errors import NotFoundError
from app.identity.account import account_section
from app.kit.text import text_problem
from app.kit.web import (
    CsrfProtected,
    FormStr,
    SettingsDep,
    client_ip,
    delete_cookie,
    render,
    safe_next,
)
from app.kit.work_gate import GateBusy, WorkGate
from app.mail.deps import OutboxDep
from app.state import ServicesDep, services_of
from app.telemetry import note, signin_failures, traced

router = APIRouter(tags=["accounts"])


def password_gate(request: Request) -> WorkGate:
    return services_of(request.app).password_gate


def _busy_page(
    request: Request, template: str, context: Mapping[str, object], busy: GateBusy
) -> HTMLResponse:
    """Too many password checks in flight on this server: ours to fix, so 503 (RFC 9110 §15.6.4)."""
    return render(
        request,
        template,
        {**context, "error": "The server is busy right now. Try again in a few seconds."},
        status_code=503,
        headers={"Retry-After": str(busy.retry_after)},
    )


def _form_problem(**fields: str) -> str | None:
    """What to fix in a form whose text cannot be stored (NUL, control characters), or None.

    Checked before anything is counted or queried (app/kit/text.py): PostgreSQL refuses a NUL.
    """
    labels = {"email": "email address", "current_password": "current password"}
    for field, value in fields.items():
        problem = text_problem(value)
        if problem is not None:
            label = labels.get(field, field.replace("_", " "))
            return f"The {label} {problem}. Remove them and try again."
    return None


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


def _sign_up_form(*, email: str = "", name: str = "", next: str) -> dict[str, str]:
    """What the sign-up page shows again: the typed email and name (never the password)."""
    return {"email": email, "name": name, "next": safe_next(next, "")}


@router.post("/sign-up", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.sign_up")
async def sign_up(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    services: ServicesDep,
    outbox: OutboxDep,
    email: FormStr = "",
    password: FormStr = "",
    name: FormStr = "",
    next: FormStr = "",
) -> Response:
    if not settings.allow_signup or not settings.password_signin:
        raise NotFoundError("Sign-up is closed here. Ask an administrator for an account.")
    if problem := _form_problem(email=email, name=name, password=password):
        context = {**_sign_up_form(next=next), "error": problem}
        return render(request, "sign_up.html", context, status_code=400)
    ip = client_ip(request)
    limits = services.rate_limits
    # Each sign-up costs an argon2 hash (64 MiB, tens of ms): bound them per address.
    verdict = await limits.hit(limits.rule(settings.signup_limit_ip), "signup-ip", ip or "?")
    form = _sign_up_form(email=email, name=name, next=next)
    if not verdict.allowed:
        return render(
            request,
            "sign_up.html",
            {**form, "error": "Too many new accounts from this address. Try again later."},
            status_code=429,
            headers={"Retry-After": str(verdict.retry_after)},
        )
    try:
        async with password_gate(request).slot():
            user = await service.create_user(
                session, email=email, password=password, name=name, ip=ip
            )
    except GateBusy as busy:
        return _busy_page(request, "sign_up.html", form, busy)
    except service.AccountError as exc:
        return render(request, "sign_up.html", {**form, "error": str(exc)}, status_code=400)
    await send_verification(session, settings, outbox, user=user)
    new = await service.create_session(
        session, settings, user=user, ip=ip, user_agent=request.headers.get("user-agent")
    )
    audit.record(session, "signin.success", user_id=user.id, ip=ip, method="sign-up")
    response = signed_in_redirect(settings, new, safe_next(next, "/connect"))
    remember_device(request, response, settings, user.id)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str = "") -> Response:
    # The busiest page a stranger can ask for, so it asks FastAPI for nothing it may not use:
    # a database session only for a session cookie to look up or an app to name ("Sign in to
    # continue to…"). Its dependency machinery was a third of the page (docs/PERFORMANCE.md).
    services, next_path = services_of(request.app), safe_next(next, "")
    request.state.user, client = None, None
    if session_cookie(request, services.settings) or next_path.startswith("/authorize?"):
        async with unit_of_work(request.app.state.sessionmaker) as session:
            browser = await optional_browser_session(request, session, services.settings)
            if browser is not None:
                return RedirectResponse(safe_next(next), status_code=303)
            client = await continue_to(services, session, next_path)
    return render(request, "sign_in.html", {"next": next_path, "continue_to": client})


def _throttled(
    request: Request,
    session: SessionDep,
    attempt: Attempt,
    context: Mapping[str, object],
    retry_after: int,
) -> HTMLResponse:
    audit.record(session, "signin.throttled", ip=attempt.ip, email=_auditable(attempt.account))
    note(gatehouse__outcome="failure", gatehouse__reason="throttled")
    signin_failures.add(1, {"gatehouse.reason": "throttled"})
    minutes = max(1, round(retry_after / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return render(
        request,
        "sign_in.html",
        {**context, "error": f"Too many failed attempts. Try again in {minutes} {unit}."},
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


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
    if not settings.password_signin:
        raise NotFoundError("Sign in with your organisation's provider instead.")
    ip = client_ip(request) or "unknown"
    context = {"email": email, "next": safe_next(next, "")}
    if problem := _form_problem(email=email, password=password):
        context = {"email": "", "next": safe_next(next, ""), "error": problem}
        return render(request, "sign_in.html", context, status_code=400)
    user = await service.find_user_by_email(session, email)
    user_id = user.id if user else None
    attempt = Attempt(
        account=service.normalise_email(email).lower()[:320],
        ip=ip,
        user_id=user_id,
        device=known_device(request, settings, user_id),
    )
    guard = services.signin_limits
    # Count first, then work: the attempt is counted before argon2 runs (app/auth/signin_limits.py).
    verdict = await guard.admit(attempt)
    if not verdict.allowed:
        return _throttled(request, session, attempt, context, verdict.retry_after)
    try:
        async with password_gate(request).slot():
            signed_in = await service.check_password(user=user, password=password)
    except GateBusy as busy:
        return _busy_page(request, "sign_in.html", context, busy)
    if signed_in is None:
        reason = "disabled" if user and user.disabled_at else "bad_credentials"
        note(gatehouse__outcome="failure", gatehouse__reason=reason)
        signin_failures.add(1, {"gatehouse.reason": reason})
        audit.record(
            session, "signin.failure", user_id=user_id, ip=ip, email=_auditable(attempt.account),
            reason=reason,
        )  # fmt: skip
        await guard.failed(session, attempt)
        error = "That email and password do not match an active account."
        return render(request, "sign_in.html", {**context, "error": error}, status_code=401)
    # Before the budget is cleared: the code page spends the same budget as the password.
    if second := await mfa_signin.second_step(
        request, session, settings, user=signed_in, next_path=safe_next(next)
    ):
        return second
    await guard.succeeded(attempt)
    new = await service.create_session(
        session, settings, user=signed_in, ip=ip, user_agent=request.headers.get("user-agent")
    )
    audit.record(session, "signin.success", user_id=signed_in.id, ip=ip)
    note(gatehouse__outcome="success", enduser__id=str(signed_in.id))
    response = signed_in_redirect(settings, new, safe_next(next))
    remember_device(request, response, settings, signed_in.id)
    return response


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
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    sessions = await service.active_sessions(session, user_id=browser.user_id)
    identities = await account_section(request, session, browser.user)
    return render(
        request,
        "account.html",
        {"user": browser.user, "sessions": sessions, "this_session": browser.id, **identities}
        | context,
        status_code=status_code,
        headers=headers,
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
    problem = _form_problem(name=name)
    if problem is None and len(name) > 200:
        problem = "Use at most 200 characters for the name."
    if problem is not None:
        return await _account_page(
            request, session, browser, status_code=400, profile_error=problem
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
    if problem := _form_problem(current_password=current_password, new_password=new_password):
        return await _account_page(
            request, session, browser, status_code=400, password_error=problem
        )
    try:
        async with password_gate(request).slot():
            await service.change_password(
                session,
                user=user,
                current_password=current_password,
                new_password=new_password,
                keep_session=browser.id,
                ip=client_ip(request),
            )
    except GateBusy as busy:
        return await _account_page(
            request,
            session,
            browser,
            status_code=503,
            headers={"Retry-After": str(busy.retry_after)},
            password_error="The server is busy right now. Try again in a few seconds.",  # noqa: S106
        )
    except service.AccountError as exc:
        return await _account_page(
            request, session, browser, status_code=400, password_error=str(exc)
        )
    return RedirectResponse("/account?notice=password", status_code=303)
