"""/account/credentials: which upstream services are connected; replace or delete a credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import CurrentBrowserSession
from app.auth.models import BrowserSession
from app.connectors import service as connectors
from app.connectors.base import Connector
from app.db import SessionDep
from app.errors import NotFoundError
from app.kit.web import CsrfProtected, SettingsDep, client_ip, render
from app.vault import service as vault

router = APIRouter(tags=["credentials"])

NOTICES = {
    "connected": "Connected. Your tools will use the new credential from now on.",
    "deleted": "Disconnected. The credential was deleted; tools will ask you to reconnect.",
}


def _connector(request: Request, name: str) -> Connector:
    found: Connector | None = request.app.state.connectors.get(name)
    if found is None:
        raise NotFoundError("There is no such connector here.")
    return found


async def _page(
    request: Request,
    session: SessionDep,
    browser: BrowserSession,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    stored = await vault.for_user(session, browser.user_id)
    rows = [
        {"connector": c, "credential": stored.get(c.name)}
        for c in request.app.state.connectors.values()
    ]
    return render(
        request,
        "credentials.html",
        {"rows": rows, "notice": NOTICES.get(notice, ""), "errors": errors or {}},
        status_code=status_code,
    )


@router.get("/account/credentials")
async def credentials_page(
    request: Request, session: SessionDep, browser: CurrentBrowserSession, notice: str = ""
) -> Response:
    return await _page(request, session, browser, notice=notice)


@router.post("/account/credentials/{name}", dependencies=[CsrfProtected])
async def connect_credential(
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    browser: CurrentBrowserSession,
    secret: Annotated[str, Form()] = "",
) -> Response:
    connector = _connector(request, name)
    state = request.app.state
    try:
        await connectors.connect(
            session,
            settings=settings,
            limits=state.rate_limits,
            envelope=state.envelope,
            cache=state.connector_cache,
            connector=connector,
            user_id=browser.user_id,
            secret_text=secret,
            ip=client_ip(request),
        )
    except connectors.CredentialProblem as exc:
        return await _page(request, session, browser, errors={name: str(exc)}, status_code=400)
    return RedirectResponse("/account/credentials?notice=connected", status_code=303)


@router.post("/account/credentials/{name}/delete", dependencies=[CsrfProtected])
async def delete_credential(
    name: str, request: Request, session: SessionDep, browser: CurrentBrowserSession
) -> Response:
    _connector(request, name)
    removed = await connectors.disconnect(
        session,
        cache=request.app.state.connector_cache,
        connector=name,
        user_id=browser.user_id,
        ip=client_ip(request),
    )
    if not removed:
        raise NotFoundError("Nothing is connected for that service.")
    return RedirectResponse("/account/credentials?notice=deleted", status_code=303)
