"""Codes, refresh tokens and client secrets exist in the database only as hashes."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.db import Base
from tests.oauth.flow import Authorization, authorize_code, exchange, refresh, register
from tests.oauth.support import db_rows


async def everything_stored(app: FastAPI) -> str:
    """Every value of every row of every table, as one searchable text."""
    parts: list[str] = []
    for table in Base.metadata.sorted_tables:
        for row in await db_rows(app, select(table)):
            for value in row:
                if isinstance(value, bytes):
                    parts.append(value.decode("latin-1"))
                elif isinstance(value, dict | list):
                    parts.append(json.dumps(value))
                else:
                    parts.append(str(value))
    return "\n".join(parts)


async def test_only_hashes_of_codes_refresh_tokens_and_secrets_are_stored(
    app: FastAPI, client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client, token_endpoint_auth_method="client_secret_post")
    secret = registered["client_secret"]
    auth = Authorization(registered["client_id"])
    code = await authorize_code(client, auth)
    tokens = (await exchange(client, auth, code, client_secret=secret)).json()
    rotated = (
        await refresh(client, auth.client_id, tokens["refresh_token"], client_secret=secret)
    ).json()
    stored = await everything_stored(app)
    assert registered["client_id"] in stored  # the search does see what is stored
    for label, plaintext in [
        ("client secret", secret),
        ("authorization code", code),
        ("refresh token", tokens["refresh_token"]),
        ("rotated refresh token", rotated["refresh_token"]),
        ("access token", tokens["access_token"]),
    ]:
        assert plaintext not in stored, label
        # the random part alone, without a recognisable prefix (gh_cs_, gh_ac_, gh_rt_)
        assert plaintext[6:] not in stored, label
