"""`/connect`: the MCP URL and short steps for each client (data in app/clients_guide.py, the
list the README's client table is rendered from too)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.deps import CurrentUser
from app.clients_guide import for_page
from app.kit.hosts import is_loopback_host
from app.kit.web import PAGE_CSP, SettingsDep, render

router = APIRouter(tags=["accounts"])

# The page's one script (the copy button) comes from our origin; nothing else may run.
CONNECT_CSP = PAGE_CSP  # script-src 'self' already: the copy button is /static/copy.js


def reachable_from_the_internet(url: str) -> bool:
    """Whether a hosted client (claude.ai, ChatGPT) could reach this URL: https, not loopback."""
    parts = urlsplit(url)
    return parts.scheme == "https" and not is_loopback_host(parts.hostname or "")


@router.get("/connect", response_class=HTMLResponse)
async def connect_page(request: Request, user: CurrentUser, settings: SettingsDep) -> HTMLResponse:
    del user  # signed in: the page is part of the account
    return render(
        request,
        "connect.html",
        {
            "mcp_url": settings.mcp_resource,
            "guides": for_page(settings.mcp_resource),
            "local_only": not reachable_from_the_internet(settings.mcp_resource),
        },
        headers={"Content-Security-Policy": CONNECT_CSP},
    )
