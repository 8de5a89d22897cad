"""What the OAuth tests share: a signed-in browser, a full code flow, JWT decoding, database reads.

The database is read only to check what the HTTP surface did, or written to let time pass.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import Executable, update

from app.db import utcnow
from app.oauth.issuance import refresh_token_hash
from app.oauth.models import RefreshToken
from tests.oauth.flow import Authorization, authorize_code, exchange

ISSUER = "http://127.0.0.1:8000"  # make_settings' PUBLIC_URL
RESOURCE = ISSUER + "/mcp"


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """RFC 6749 §5.2: the status, the error code, and never cached."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return dict(body)


async def full_flow(
    client: httpx.AsyncClient,
    client_id: str,
    *,
    scope: str | None = "mcp mcp:write",
    ticked: list[str] | None = None,
    **token_extra: str,
) -> tuple[Authorization, dict[str, Any]]:
    """Authorize (signed-in client), approve, exchange; returns the request and the tokens."""
    auth = Authorization(client_id, scope=scope)
    code = await authorize_code(client, auth, scopes=ticked)
    response = await exchange(client, auth, code, **token_extra)
    assert response.status_code == 200, response.text
    return auth, dict(response.json())


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def verify_jwt(client: httpx.AsyncClient, token: str) -> jwt.Token:
    """Decode and verify an access token against the published /jwks.json, as an RS would."""
    jwks = (await client.get("/jwks.json")).json()
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])


async def db_rows(app: FastAPI, stmt: Executable) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list((await session.execute(stmt)).all())


async def db_execute(app: FastAPI, stmt: Executable) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(stmt)


def refresh_hash(app: FastAPI, token: str) -> str:
    """The stored hash of a refresh token (app/oauth/issuance.py refresh_token_hash)."""
    return refresh_token_hash(app.state.settings.secret_key_bytes, token)


async def rotated_before_the_grace_window(app: FastAPI, token: str) -> None:
    """Backdate the rotation of `token`'s row past REFRESH_REUSE_GRACE, so presenting it again
    is reuse rather than a retry."""
    grace = app.state.settings.refresh_reuse_grace
    await db_execute(
        app,
        update(RefreshToken)
        .where(RefreshToken.token_hash == refresh_hash(app, token))
        .values(rotated_at=utcnow() - timedelta(seconds=grace + 5)),
    )
