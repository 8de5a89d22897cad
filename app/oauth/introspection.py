"""RFC 7662 token introspection."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.oauth.access_tokens import InvalidAccessToken
from app.oauth.issuance import find_refresh_token
from app.oauth.models import OAuthClient, OAuthGrant
from app.oauth.registration import RESOURCE_SERVER_KIND
from app.oauth.revocation import looks_like_jwt
from app.oauth.signing_keys import SigningKeys

INACTIVE: dict[str, Any] = {"active": False}


async def introspect(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    token: str,
    caller: OAuthClient,
) -> dict[str, Any]:
    """RFC 7662 §2.2: whether the token is active now, and its claims if it is.

    RFC 7662 §4: "the authorization server MUST determine whether or not the token can be used
    at the protected resource making the introspection call". Anyone can register a confidential
    client, so an ordinary client learns only about its own tokens; a resource server (registered
    by an administrator) about every access token minted for our MCP resource, the only audience
    our keys.verify accepts, and never about refresh tokens, which no resource server sees.
    """
    if looks_like_jwt(token):
        return await _access_token(session, settings, keys, token, caller)
    if caller.kind == RESOURCE_SERVER_KIND:
        return dict(INACTIVE)
    return await _refresh_token(session, settings, token, caller)


async def _access_token(
    session: AsyncSession, settings: Settings, keys: SigningKeys, token: str, caller: OAuthClient
) -> dict[str, Any]:
    try:
        claims = await keys.verify(token, issuer=settings.issuer, audience=settings.mcp_resource)
    except InvalidAccessToken:
        return dict(INACTIVE)
    grant = await session.get(OAuthGrant, uuid.UUID(claims.grant_id))
    if (
        grant is None
        or (grant.client_pk != caller.id and caller.kind != RESOURCE_SERVER_KIND)
        or grant.revoked_at is not None
        or grant.user.disabled_at is not None
    ):
        return dict(INACTIVE)
    return {
        "active": True,
        "token_type": "Bearer",
        "scope": " ".join(claims.scopes),
        "client_id": claims.client_id,
        "sub": claims.subject,
        "aud": claims.audience,
        "iss": settings.issuer,
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "jti": claims.token_id,
        "gid": claims.grant_id,
    }


async def _refresh_token(
    session: AsyncSession, settings: Settings, token: str, caller: OAuthClient
) -> dict[str, Any]:
    row = await find_refresh_token(session, settings.secret_key_bytes, token)
    if (
        row is None
        or row.client_pk != caller.id
        or row.rotated_at is not None
        or row.expires_at <= utcnow()
        or row.grant.revoked_at is not None
        or row.grant.user.disabled_at is not None
    ):
        return dict(INACTIVE)
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": row.scopes,
        "client_id": row.grant.client.client_id,
        "sub": str(row.grant.user_id),
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.created_at.timestamp()),
        "gid": str(row.grant_id),
    }
