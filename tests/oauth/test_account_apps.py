"""/account/apps: the user's connected apps, and revoking one."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.helpers import csrf_from, sign_up
from tests.oauth.flow import Authorization, refresh, register
from tests.oauth.support import assert_oauth_error, full_flow

REVOKE_ACTION = re.compile(r'action="(/account/apps/[^"]+/revoke)"')


async def test_connected_app_is_listed_with_name_and_scopes(
    client: httpx.AsyncClient, fresh_user: str
) -> None:
    registered = await register(client, client_name="Acme Notes")
    await full_flow(client, registered["client_id"], ticked=[])
    page = await client.get("/account/apps")
    assert page.status_code == 200
    rows = page.text.split('<tr class="app-row">')[1:]
    assert len(rows) == 1
    assert '<td class="app-name">Acme Notes</td>' in rows[0]
    assert '<td data-label="Vouched for by">unverified</td>' in rows[0]
    assert '<td data-label="Access">mcp</td>' in rows[0]


async def test_app_name_with_script_is_shown_as_text(
    client: httpx.AsyncClient, fresh_user: str
) -> None:
    registered = await register(client, client_name="<script>alert(1)</script>")
    await full_flow(client, registered["client_id"])
    page = await client.get("/account/apps")
    assert "<script>alert(1)</script>" not in page.text
    assert '<td class="app-name">&lt;script&gt;alert(1)&lt;/script&gt;</td>' in page.text


async def test_revoking_an_app_makes_its_refresh_token_fail_at_once(
    client: httpx.AsyncClient, fresh_user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    page = await client.get("/account/apps")
    action = REVOKE_ACTION.search(page.text)
    assert action
    response = await client.post(action.group(1), data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/account/apps?notice=revoked"
    after = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(after, 400, "invalid_grant")
    assert '<tr class="app-row">' not in (await client.get("/account/apps")).text
    # The remembered consent is gone too: the app must ask again.
    again = await client.get(Authorization(public_client["client_id"]).url())
    assert again.status_code == 200
    assert 'name="pending"' in again.text


async def test_revoke_needs_the_csrf_token(
    client: httpx.AsyncClient, fresh_user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    action = REVOKE_ACTION.search((await client.get("/account/apps")).text)
    assert action
    assert (await client.post(action.group(1), data={})).status_code == 403
    still = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert still.status_code == 200


async def test_cannot_revoke_another_users_app(
    client: httpx.AsyncClient, fresh_user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    action = REVOKE_ACTION.search((await client.get("/account/apps")).text)
    assert action
    client.cookies.clear()
    await sign_up(client)
    page = await client.get("/account/apps")
    response = await client.post(action.group(1), data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 404
    still = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert still.status_code == 200


async def test_apps_page_needs_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/account/apps")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in?next=")
