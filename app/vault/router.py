"""/account/credentials: which upstream services are connected; replace or delete a credential."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import CurrentBrowserSession
from app.auth.models import BrowserSession
from app.connectors import service as connectors
from app.connectors.base import Connector
from app.db import SessionDep
from app.errors import NotFoundError
from app.kit.web import CsrfProtected, FormStr, client_ip, render
from app.state import Services, ServicesDep
from app.vault import service as vault

router = APIRouter(tags=["credentials"])

NOTICES = {
    "connected": "Connected. Your tools will use the new credential from now on.",
    "deleted": "Disconnected. The credential was deleted; tools will ask you to reconnect.",
}


def _connector(services: Services, name: str) -> Connector:
    found = services.connectors.get(name)
    if found is None:
        raise NotFoundError("There is no such connector here.")
    return found


async def _page(
    request: Request,
    session: SessionDep,
    browser: BrowserSession,
    services: Services,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    stored = await vault.for_user(session, browser.user_id)
    rows = [
        {"connector": c, "credential": stored.get(c.name)} for c in services.connectors.values()
    ]
    return render(
        request,
        "credentials.html",
        {"rows": rows, "notice": NOTICES.get(notice, ""), "errors": errors or {}},
        status_code=status_code,
    )


@router.get("/account/credentials")
async def credentials_page(
    request: Request,
    session: SessionDep,
    browser: CurrentBrowserSession,
    services: ServicesDep,
    notice: str = "",
) -> Response:
    return await _page(request, session, browser, services, notice=notice)


@router.post("/account/credentials/{name}", dependencies=[CsrfProtected])
async def connect_credential(
    *,
    name: str,
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    browser: CurrentBrowserSession,
    secret: FormStr = "",
) -> Response:
    connector = _connector(services, name)
    try:
        await connectors.connect(
            session,
            settings=services.settings,
            limits=services.rate_limits,
            envelope=services.envelope,
            cache=services.connector_cache,
            connector=connector,
            user_id=browser.user_id,
            secret_text=secret,
            ip=client_ip(request),
        )
    except connectors.CredentialProblem as exc:
        errors = {name: str(exc)}
        return await _page(request, session, browser, services, errors=errors, status_code=400)
    return RedirectResponse("/account/credentials?notice=connected", status_code=303)


@router.post("/account/credentials/{name}/delete", dependencies=[CsrfProtected])
async def delete_credential(
    name: str,
    request: Request,
    session: SessionDep,
    browser: CurrentBrowserSession,
    services: ServicesDep,
) -> Response:
    _connector(services, name)
    removed = await connectors.disconnect(
        session,
        cache=services.connector_cache,
        connector=name,
        user_id=browser.user_id,
        ip=client_ip(request),
    )
    if not removed:
        raise NotFoundError("Nothing is connected for that service.")
    return RedirectResponse("/account/credentials?notice=deleted", status_code=303)
