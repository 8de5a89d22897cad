"""`GET /api/me`: the caller's identity, for the same bearer tokens /mcp takes.

The reference for a deployer's own routes: take `auth: McpAuth` and the route is protected
exactly as /mcp is (signature, issuer, audience, expiry, revocation, the scope `mcp`), with the
same 401/403 challenges.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.mcp.auth import McpAuth

router = APIRouter(include_in_schema=False)


@router.get("/api/me")
async def me(auth: McpAuth) -> JSONResponse:
    """Who the token acts for. Never the token itself."""
    return JSONResponse(
        {
            "user_id": str(auth.user.id),
            "email": auth.user.email,
            "name": auth.user.name,
            "client_id": auth.client.id,
            "scopes": sorted(auth.scopes),
            "grant_id": str(auth.grant_id),
        },
        headers={"Cache-Control": "no-store"},
    )
