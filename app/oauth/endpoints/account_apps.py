"""/account/apps: the person's connected apps, and revoking one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import CurrentBrowserSession
from app.db import SessionDep
from app.errors import NotFoundError
from app.kit.web import CsrfProtected, client_ip, render
from app.oauth.connected_apps import connected_apps, revoke_app

router = APIRouter()


@router.get("/account/apps")
async def account_apps(
    request: Request, session: SessionDep, browser: CurrentBrowserSession, notice: str = ""
) -> Response:
    apps = await connected_apps(session, user_id=browser.user_id)
    message = "Access was revoked. The app must ask you again." if notice == "revoked" else ""
    return render(request, "apps.html", {"apps": apps, "notice": message})


@router.post("/account/apps/{client_pk}/revoke", dependencies=[CsrfProtected])
async def revoke_account_app(
    client_pk: uuid.UUID, request: Request, session: SessionDep, browser: CurrentBrowserSession
) -> Response:
    count = await revoke_app(
        session, user_id=browser.user_id, client_pk=client_pk, ip=client_ip(request)
    )
    if count == 0:
        raise NotFoundError("That app is not connected to your account.")
    return RedirectResponse("/account/apps?notice=revoked", status_code=303)
