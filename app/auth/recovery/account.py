"""The account page's email forms: send the verification link again, change the address."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.auth import service as accounts
from app.auth.deps import CurrentUser
from app.auth.recovery import service
from app.auth.recovery.limits import first_refusal, too_many
from app.db import SessionDep
from app.kit.web import CsrfProtected, FormStr, SettingsDep, client_ip, render, safe_next
from app.mail.deps import OutboxDep

router = APIRouter(tags=["accounts"])


@router.post("/account/verify-email", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def send_verification_again(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    outbox: OutboxDep,
    user: CurrentUser,
    next: FormStr = "",
) -> Response:
    back = safe_next(next)
    if user.email_verified_at is not None:
        return _message(request, "Already confirmed", f"{user.email} is already confirmed.", back)
    refused = await first_refusal(
        request,
        (settings.verify_limit_account, "verify-account", str(user.id)),
        (settings.verify_limit_ip, "verify-ip", client_ip(request) or "unknown"),
    )
    if refused:
        return too_many(request, refused, back=back)
    await service.send_verification(session, settings, outbox, user=user)
    return _message(
        request,
        "Check your email",
        f"We sent a new link to {user.email}. It works once, for 24 hours.",
        back,
    )


@router.get("/account/email", response_class=HTMLResponse)
async def change_email_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "account_email_change.html", {"user": user})


@router.post("/account/email", response_class=HTMLResponse, dependencies=[CsrfProtected])
async def change_email(
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    outbox: OutboxDep,
    user: CurrentUser,
    new_email: FormStr = "",
    current_password: FormStr = "",
) -> Response:
    # Counted before the password check: this form must not become a password oracle either.
    refused = await first_refusal(
        request, (settings.email_change_limit_account, "email-change", str(user.id))
    )
    if refused:
        return too_many(request, refused, back="/account")
    try:
        sent_to = await service.request_email_change(
            session,
            settings,
            outbox,
            user=user,
            current_password=current_password,
            new_email=new_email,
            ip=client_ip(request),
        )
    except accounts.AccountError as exc:
        return render(
            request,
            "account_email_change.html",
            {"user": user, "error": str(exc), "new_email": new_email},
            status_code=400,
        )
    return _message(
        request,
        "Check the new address",
        f"We sent a link to {sent_to}. Your address changes when you use it; until then you "
        f"sign in as {user.email}. We also told {user.email} about the request.",
        "/account",
    )


def _message(request: Request, title: str, message: str, back: str) -> HTMLResponse:
    return render(
        request,
        "recovery_message.html",
        {"title": title, "message": message, "link": back, "link_text": "Go back"},
    )
