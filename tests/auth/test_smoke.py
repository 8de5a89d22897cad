from __future__ import annotations

import httpx

from tests.helpers import sign_in, sign_up


async def test_sign_up_then_account_page_shows_email(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    page = await client.get("/account")
    assert page.status_code == 200
    assert email in page.text


async def test_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    client.cookies.clear()
    response = await sign_in(client, email, "not the password")
    assert response.status_code == 401
    assert "do not match" in response.text
