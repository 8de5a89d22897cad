"""RFC 7636 PKCE, S256 only (OAuth 2.1 §4.1.1): refusals at /authorize and at /token."""

from __future__ import annotations

from typing import Any

import httpx

from tests.oauth.flow import Authorization, authorize_code, exchange, new_verifier
from tests.oauth.support import assert_oauth_error
from tests.oauth.test_authorize import assert_redirected_error


async def test_missing_code_challenge_refused(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], method=None)
    params = {k: v for k, v in auth.params().items() if k != "code_challenge"}
    response = await client.get("/authorize", params=params)
    assert_redirected_error(response, auth, "invalid_request")


async def test_plain_method_refused(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], method="plain")
    auth.extra = {"code_challenge": auth.verifier}
    assert_redirected_error(await client.get(auth.url()), auth, "invalid_request")


async def test_missing_method_refused_since_it_means_plain(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    # RFC 7636 §4.3: an absent code_challenge_method defaults to "plain".
    auth = Authorization(public_client["client_id"], method=None)
    assert_redirected_error(await client.get(auth.url()), auth, "invalid_request")


async def test_malformed_challenge_refused(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"], extra={"code_challenge": "short"})
    assert_redirected_error(await client.get(auth.url()), auth, "invalid_request")


async def test_wrong_verifier_is_invalid_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, code_verifier=new_verifier())
    assert_oauth_error(response, 400, "invalid_grant")


async def test_missing_verifier_is_refused(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.redirect_uri,
        "client_id": auth.client_id,
    }
    response = await client.post("/token", data=data)
    assert_oauth_error(response, 400, "invalid_request")


async def test_verifier_equal_to_challenge_is_invalid_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    # A client that sent its challenge as the verifier (a "plain" downgrade) must fail.
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    challenge = auth.params()["code_challenge"]
    response = await exchange(client, auth, code, code_verifier=challenge)
    assert_oauth_error(response, 400, "invalid_grant")


async def test_right_verifier_gets_tokens(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    auth = Authorization(public_client["client_id"])
    code = await authorize_code(client, auth)
    assert (await exchange(client, auth, code)).status_code == 200
