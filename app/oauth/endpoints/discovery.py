"""Discovery: RFC 8414 metadata (and its OIDC alias) and the RFC 7517 key set."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.kit.web import SettingsDep
from app.oauth.deps import SigningKeysDep
from app.oauth.metadata import authorization_server_metadata

router = APIRouter()


@router.get("/.well-known/oauth-authorization-server")
@router.get("/.well-known/openid-configuration")
async def as_metadata(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(
        authorization_server_metadata(settings), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/jwks.json")
async def jwks(keys: SigningKeysDep) -> JSONResponse:
    await keys.active()  # the first request of a new deployment creates the first key
    _, published = await keys.published()
    return JSONResponse({"keys": published}, headers={"Cache-Control": "public, max-age=60"})
