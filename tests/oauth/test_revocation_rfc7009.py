"""RFC 7009 /revoke: always 200, and it revokes the token's whole grant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import NESTED_HEADER_TOKEN
from tests.oauth.flow import refresh, register
from tests.oauth.support import assert_oauth_error, full_flow


async def revoke(
    client: httpx.AsyncClient, client_id: str, token: str, **extra: str
) -> httpx.Response:
    return await client.post("/revoke", data={"token": token, "client_id": client_id, **extra})


async def test_revoking_the_refresh_token_revokes_the_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await revoke(client, public_client["client_id"], tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    again = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


async def test_revoking_the_access_token_revokes_the_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await revoke(
        client, public_client["client_id"], tokens["access_token"], token_type_hint="access_token"
    )
    assert response.status_code == 200
    again = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


async def test_revoking_the_access_token_without_a_hint(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    assert (await revoke(client, public_client["client_id"], tokens["access_token"])).is_success
    again = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


async def test_revoking_a_rotated_refresh_token_revokes_the_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    successor = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    assert (await revoke(client, public_client["client_id"], tokens["refresh_token"])).is_success
    again = await refresh(client, public_client["client_id"], successor["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


@pytest.mark.parametrize(
    "token", ["gh_rt_no_such_token", NESTED_HEADER_TOKEN], ids=["unknown", "nested-header"]
)
async def test_unknown_token_still_gets_200(
    client: httpx.AsyncClient, public_client: dict[str, Any], token: str
) -> None:
    # RFC 7009 §2.2: invalid tokens do not cause an error response.
    response = await revoke(client, public_client["client_id"], token)
    assert response.status_code == 200
    assert response.content == b""


async def test_token_of_another_client_is_not_revoked(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    other = await register(client)
    _, tokens = await full_flow(client, public_client["client_id"])
    assert (await revoke(client, other["client_id"], tokens["refresh_token"])).status_code == 200
    still = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert still.status_code == 200


async def test_missing_token_is_invalid_request(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    response = await client.post("/revoke", data={"client_id": public_client["client_id"]})
    assert_oauth_error(response, 400, "invalid_request")


async def test_unauthenticated_revocation_is_invalid_client(client: httpx.AsyncClient) -> None:
    response = await client.post("/revoke", data={"token": "gh_rt_x"})
    assert_oauth_error(response, 401, "invalid_client")
