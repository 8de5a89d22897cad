"""/token with authorization_code: RFC 6749 §4.1.3/§5, OAuth 2.1 §4.1.3, RFC 9068 access tokens."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.auth.models import User
from app.db import utcnow
from app.kit.security import hash_token
from app.oauth.models import AuthorizationCode
from tests.oauth.flow import Authorization, authorize_code, exchange, refresh, register
from tests.oauth.support import (
    ISSUER,
    RESOURCE,
    assert_oauth_error,
    db_execute,
    db_rows,
    full_flow,
    verify_jwt,
)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def test_token_response_follows_rfc6749_5_1(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    response = await exchange(client, auth, await authorize_code(client, auth))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "mcp mcp:write"
    assert body["refresh_token"].startswith("gh_rt_")


async def test_access_token_is_an_rfc9068_jwt(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    token = await verify_jwt(client, tokens["access_token"])
    jwks = (await client.get("/jwks.json")).json()["keys"]
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] in [key["kid"] for key in jwks]
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == RESOURCE
    assert claims["client_id"] == public_client["client_id"]
    assert claims["scope"] == "mcp mcp:write"
    assert claims["exp"] - claims["iat"] == app.state.settings.access_token_ttl
    assert len(claims["jti"]) >= 16
    assert claims["gid"]
    [(user_id,)] = await db_rows(app, select(User.id).where(User.email == user))
    assert claims["sub"] == str(user_id)


async def test_each_access_token_has_its_own_jti(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, first = await full_flow(client, public_client["client_id"])
    second = (await refresh(client, public_client["client_id"], first["refresh_token"])).json()
    jti = [(await verify_jwt(client, t["access_token"])).claims["jti"] for t in (first, second)]
    assert jti[0] != jti[1]


async def test_code_reuse_is_invalid_grant_and_revokes_the_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    first = await exchange(client, auth, code)
    assert first.status_code == 200
    assert_oauth_error(await exchange(client, auth, code), 400, "invalid_grant")
    # OAuth 2.1 §4.1.3: tokens issued from the code are revoked with it.
    again = await refresh(client, auth.client_id, first.json()["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


async def test_expired_code_is_invalid_grant(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    code_hash = hash_token(app.state.settings.secret_key_bytes, code, purpose="code")
    await db_execute(
        app,
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash)
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    assert_oauth_error(await exchange(client, auth, code), 400, "invalid_grant")


async def test_unknown_code_is_invalid_grant(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    assert_oauth_error(await exchange(client, auth, "gh_ac_made_up"), 400, "invalid_grant")


async def test_redirect_uri_differing_from_authorization_is_invalid_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, redirect_uri="http://127.0.0.1:33419/callback")
    assert_oauth_error(response, 400, "invalid_grant")


async def test_code_of_another_public_client_is_invalid_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    other = await register(client)
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, client_id=other["client_id"])
    assert_oauth_error(response, 400, "invalid_grant")


async def test_other_resource_at_token_is_invalid_target(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, resource="https://other.example/mcp")
    assert_oauth_error(response, 400, "invalid_target")


async def test_disabled_user_cannot_exchange_a_code(
    app: FastAPI, client: httpx.AsyncClient, fresh_user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    await db_execute(app, update(User).where(User.email == fresh_user).values(disabled_at=utcnow()))
    assert_oauth_error(await exchange(client, auth, code), 400, "invalid_grant")


async def test_disabled_user_cannot_refresh(
    app: FastAPI, client: httpx.AsyncClient, fresh_user: str, public_client: dict[str, Any]
) -> None:
    auth, tokens = await full_flow(client, public_client["client_id"])
    await db_execute(app, update(User).where(User.email == fresh_user).values(disabled_at=utcnow()))
    response = await refresh(client, auth.client_id, tokens["refresh_token"])
    assert_oauth_error(response, 400, "invalid_grant")


# -- client authentication (RFC 6749 §2.3) ------------------------------------------------------


async def test_basic_client_authenticates_with_basic(
    client: httpx.AsyncClient, user: str, basic_client: dict[str, Any]
) -> None:
    auth = Authorization(basic_client["client_id"])
    code = await authorize_code(client, auth)
    response = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": auth.redirect_uri,
            "code_verifier": auth.verifier,
        },
        headers=basic(basic_client["client_id"], basic_client["client_secret"]),
    )
    assert response.status_code == 200, response.text


async def test_wrong_secret_is_401_invalid_client_with_basic_challenge(
    client: httpx.AsyncClient, user: str, basic_client: dict[str, Any]
) -> None:
    auth = Authorization(basic_client["client_id"])
    code = await authorize_code(client, auth)
    response = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": auth.redirect_uri,
            "code_verifier": auth.verifier,
        },
        headers=basic(basic_client["client_id"], "gh_cs_wrong"),
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_secret_in_body_when_registered_basic_is_invalid_client(
    client: httpx.AsyncClient, user: str, basic_client: dict[str, Any]
) -> None:
    auth = Authorization(basic_client["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, client_secret=basic_client["client_secret"])
    assert_oauth_error(response, 401, "invalid_client")


async def test_confidential_client_without_secret_is_invalid_client(
    client: httpx.AsyncClient, user: str, basic_client: dict[str, Any]
) -> None:
    auth = Authorization(basic_client["client_id"])
    code = await authorize_code(client, auth)
    assert_oauth_error(await exchange(client, auth, code), 401, "invalid_client")


async def test_post_client_authenticates_in_the_body(client: httpx.AsyncClient, user: str) -> None:
    registered = await register(client, token_endpoint_auth_method="client_secret_post")
    auth = Authorization(registered["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, client_secret=registered["client_secret"])
    assert response.status_code == 200, response.text


async def test_unknown_client_id_is_invalid_client(client: httpx.AsyncClient) -> None:
    auth = Authorization("gh_c_nobody")
    assert_oauth_error(await exchange(client, auth, "gh_ac_x"), 401, "invalid_client")


# -- malformed requests -------------------------------------------------------------------------


async def test_unsupported_grant_type(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    response = await client.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": public_client["client_id"]},
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_missing_grant_type_is_invalid_request(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    response = await client.post("/token", data={"client_id": public_client["client_id"]})
    assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_parameter_is_invalid_request(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    body = (
        f"grant_type=authorization_code&code={code}&code={code}"
        f"&code_verifier={auth.verifier}&client_id={auth.client_id}"
    )
    response = await client.post(
        "/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_json_body_is_invalid_request(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    response = await client.post(
        "/token",
        json={"grant_type": "authorization_code", "client_id": public_client["client_id"]},
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_form_over_64_kib_is_413_and_changes_nothing(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any], chunked: bool
) -> None:
    """/token keeps the pages' body limit when it is answered in front of the router."""
    _, tokens = await full_flow(client, public_client["client_id"])
    body = (
        f"grant_type=refresh_token&client_id={public_client['client_id']}"
        f"&refresh_token={tokens['refresh_token']}&pad=" + "x" * (64 * 1024)
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8 * 1024):
            yield body[start : start + 8 * 1024]

    response = await client.post(
        "/token",
        content=chunks() if chunked else body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    # The token was not rotated: it still refreshes.
    assert (await refresh(client, public_client["client_id"], tokens["refresh_token"])).is_success
