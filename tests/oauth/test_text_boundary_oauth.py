"""NUL and control characters in OAuth parameters never reach PostgreSQL as a 500.

The endpoints check their parameters before any query (app/kit/text.py) and answer with the
endpoint's bad-request error: RFC 6749 §5.2 invalid_request ("otherwise malformed") as JSON,
invalid_client for Basic credentials, invalid_client_metadata at /register, or a page at /authorize,
whose redirect URI cannot be trusted for a client_id that is not one. Should anything slip past,
the database's own refusal (SQLSTATE 22) gets the same answer. Nothing is logged as an error.
"""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from tests.oauth.flow import REDIRECT_URI, Authorization

NUL_CLIENT = "client\x00id"


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def assert_bad_request_json(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["error"] in ("invalid_request", "invalid_client"), response.text
    assert response.headers["cache-control"] == "no-store"


async def test_authorize_with_a_nul_client_id_is_a_400_page(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get(Authorization(NUL_CLIENT).url())
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "refresh_token", "refresh_token": "gh_rt_x", "client_id": NUL_CLIENT},
        {
            "grant_type": "authorization_code",
            "code": "gh_ac_x",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": "v" * 43,
            "client_id": NUL_CLIENT,
        },
    ],
    ids=["refresh", "code"],
)
async def test_token_with_a_nul_client_id_in_the_form(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, data: dict[str, str]
) -> None:
    assert_bad_request_json(await client.post("/token", data=data))
    no_errors_logged(caplog)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
async def test_a_nul_client_id_in_basic_authentication(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    basic = base64.b64encode(f"{NUL_CLIENT}:secret".encode()).decode()
    data = {"grant_type": "refresh_token", "refresh_token": "gh_rt_x", "token": "gh_rt_x"}
    response = await client.post(path, data=data, headers={"Authorization": f"Basic {basic}"})
    assert_bad_request_json(response)
    no_errors_logged(caplog)


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
async def test_a_nul_client_id_in_the_form_at_revoke_and_introspect(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    response = await client.post(path, data={"token": "gh_rt_x", "client_id": NUL_CLIENT})
    assert_bad_request_json(response)
    no_errors_logged(caplog)


async def test_a_nul_in_a_token_at_revoke_is_not_a_500(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post("/revoke", data={"token": "gh_rt_\x00", "client_id": "nobody"})
    assert response.status_code < 500, response.text
    no_errors_logged(caplog)


async def test_the_refusal_names_the_field_and_comes_before_any_query(
    client: httpx.AsyncClient,
) -> None:
    token = await client.post(
        "/token", data={"grant_type": "refresh_token", "client_id": NUL_CLIENT}
    )
    assert token.status_code == 400
    assert token.json() == {
        "error": "invalid_request",
        "error_description": "client_id holds a NUL character",
    }
    basic = base64.b64encode(f"{NUL_CLIENT}:secret".encode()).decode()
    revoke = await client.post(
        "/revoke", data={"token": "x"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert revoke.status_code == 401
    assert revoke.json()["error"] == "invalid_client"
    registered = await client.post(
        "/register", json={"client_name": "a\u0000b", "redirect_uris": [REDIRECT_URI]}
    )
    assert registered.status_code == 400
    assert registered.json() == {
        "error": "invalid_client_metadata",
        "error_description": "client_name holds a NUL character",
    }
