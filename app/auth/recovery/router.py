"""Pages reached from an email or the sign-in page: /verify-email, /forgot-password,
/reset-password (and, included below, the account page's email forms)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.auth import service as accounts
from app.auth.deps import OptionalBrowserSession
from app.auth.recovery import service, tokens
from app.auth.recovery.account import router as account_router
from app.auth.recovery.limits import first_refusal, too_many
from app.auth.recovery.tokens import LIFETIMES
from app.db import SessionDep
from app.kit.web import CsrfProtected, FormStr, SettingsDep, client_ip, render
from app.mail.deps import OutboxDep
from app.state import services_of
from app.telemetry import traced

router = APIRouter(tags=["accounts"])
router.include_router(account_router)

RESET_MINUTES = int(LIFETIMES["reset_password"].total_seconds() // 60)


def _link_invalid(request: Request, *, kind: str) -> HTMLResponse:
    """A used, expired or unknown link: say so, and offer a new one (410: it is gone)."""
    return render(request, "link_invalid.html", {"kind": kind}, status_code=410)


# -- /verify-email ---------------------------------------------------------------------------------
# GET only shows a button; the POST it submits uses the link. Mail scanners and link previewers
# fetch every URL in a message: were GET to use the token, they would spend it before the person
# ever clicked.


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    # Loaded for the page: signed in, the "link expired" page offers a new link from here.
    browser: OptionalBrowserSession,  # noqa: ARG001
    token: str = "",
) -> Response:
    row = await service.address_link(session, settings, token=token)
    if row is None:
        return _link_invalid(request, kind="verify")
    return render(
        request,
        "verify_email.html",
        {"token": token, "new_email": row.new_email if row.purpose == "change_email" else None},
    )


@router.post("/verify-email", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.verify_email")
async def verify_email(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    browser: OptionalBrowserSession,  # noqa: ARG001 - loaded for the page, as above
    token: FormStr = "",
) -> Response:
    try:
        proven = await service.use_address_link(
            session, settings, token=token, ip=client_ip(request)
        )
    except service.AccountTaken:
        await session.rollback()
        return render(
            request,
            "recovery_message.html",
            {
                "title": "That address is taken",
                "message": "Another account started using that address in the meantime, so "
                "your address was not changed.",
                "link": "/account",
                "link_text": "Go to your account",
            },
            status_code=409,
        )
    except service.LinkProblem:
        return _link_invalid(request, kind="verify")
    message = (
        f"Your address is now {proven.user.email}."
        if proven.changed_email
        else f"Thank you: {proven.user.email} is confirmed."
    )
    return render(
        request,
        "recovery_message.html",
        {
            "title": "Email address confirmed",
            "message": message,
            "link": "/account",
            "link_text": "Go to your account",
        },
    )


# -- /forgot-password ------------------------------------------------------------------------------


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(request: Request) -> Response:
    return render(request, "forgot_password.html", {})


@router.post("/forgot-password", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.forgot_password")
async def forgot_password(
    request: Request, settings: SettingsDep, outbox: OutboxDep, email: FormStr = ""
) -> Response:
    email = accounts.normalise_email(email)
    problem = accounts.email_problem(email)
    if problem:  # a property of the text typed, the same whether or not an account exists
        return render(
            request, "forgot_password.html", {"error": problem, "email": email}, status_code=400
        )
    ip = client_ip(request) or "unknown"
    refused = await first_refusal(request, (settings.forgot_limit_ip, "forgot-ip", ip))
    if refused:
        return too_many(request, refused, back="/forgot-password")
    # Past the per-address limit nothing more is sent, but the answer stays the same: a refusal
    # here would let anyone, from anywhere, stop the owner from resetting their password.
    if await first_refusal(request, (settings.forgot_limit_email, "forgot-email", email.lower())):
        return render(request, "forgot_password_sent.html", {"minutes": RESET_MINUTES})
    # No lookup here: the account is looked for (and mailed) on an outbox worker, so this
    # response is identical in content and in cost for a known and an unknown address.
    job = functools.partial(
        service.send_reset_link,
        services_of(request.app).sessionmaker,
        settings,
        outbox,
        email=email,
        ip=ip,
    )
    outbox.defer(job, kind="reset_password")
    return render(request, "forgot_password_sent.html", {"minutes": RESET_MINUTES})


# -- /reset-password -------------------------------------------------------------------------------


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(
    request: Request, session: SessionDep, settings: SettingsDep, token: str = ""
) -> Response:
    live = await tokens.peek(session, settings, token=token, purposes=service.RESET_PURPOSES)
    if live is None:
        return _link_invalid(request, kind="reset")
    return render(request, "reset_password.html", {"token": token, "disconnect_apps": True})


@router.post("/reset-password", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("auth.reset_password")
async def reset_password(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    outbox: OutboxDep,
    token: FormStr = "",
    new_password: FormStr = "",
    disconnect_apps: FormStr = "",
) -> Response:
    try:
        user = await service.reset_password(
            session,
            settings,
            outbox,
            token=token,
            new_password=new_password,
            disconnect_apps=bool(disconnect_apps),
            ip=client_ip(request),
        )
    except service.LinkProblem:
        return _link_invalid(request, kind="reset")
    except accounts.AccountError as exc:
        context = {"token": token, "error": str(exc), "disconnect_apps": bool(disconnect_apps)}
        return render(request, "reset_password.html", context, status_code=400)
    return render(
        request,
        "recovery_message.html",
        {
            "title": "Your password was changed",
            "message": f"Sign in to {user.email} with your new password. Every session was "
            "signed out"
            + (" and every connected app was disconnected." if disconnect_apps else "."),
            "link": "/sign-in",
            "link_text": "Sign in",
        },
    )
