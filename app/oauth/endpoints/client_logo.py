"""GET /consent/logo?client_id=…: the client's logo, fetched by us and served from our origin.

Only for a signed-in browser (the consent page's viewer), so nobody else can make us fetch.
Stateless across replicas: the client is found again by its id, its `logo_uri` read from its
registered metadata or from the metadata document /authorize just fetched (cached only).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.auth.deps import CurrentBrowserSession
from app.db import SessionDep
from app.oauth.clients import find_client
from app.oauth.deps import ClientLogosDep, FetcherDep

router = APIRouter()

LOGO_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@router.get("/consent/logo", include_in_schema=False)
async def client_logo(
    client_id: str,
    session: SessionDep,
    browser: CurrentBrowserSession,
    logos: ClientLogosDep,
    fetcher: FetcherDep,
) -> Response:
    del browser  # signed in: see the module docstring
    logo_uri: object = None
    client = await find_client(session, client_id[:2048])
    if client is not None and client.revoked_at is None:
        logo_uri = (client.client_metadata or {}).get("logo_uri")
    elif (document := fetcher.cached(client_id[:2048])) is not None:
        logo_uri = document.logo_uri
    logo = await logos.get(logo_uri) if logos is not None and isinstance(logo_uri, str) else None
    if logo is None:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    return Response(logo.body, media_type=logo.content_type, headers=LOGO_HEADERS)
