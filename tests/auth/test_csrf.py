"""Every form POST needs the signed double-submit token and a same-origin (or absent) Origin;
a refused POST answers 403 and changes nothing."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.routing import BaseRoute

from app.auth.models import User
from tests.helpers import (
    PASSWORD,
    csrf_from,
    db_scalar,
    sessions_of,
    sign_up,
    unique_email,
    user_by_email,
)

REFUSAL = "The form could not be verified"


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert REFUSAL in response.text
    assert not any("gh_session" in c for c in response.headers.get_list("set-cookie"))


async def test_first_page_view_sets_an_http_only_lax_csrf_cookie(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sign-in")
    (cookie,) = response.headers.get_list("set-cookie")
    assert cookie == f"gh_csrf={client.cookies['gh_csrf']}; HttpOnly; Path=/; SameSite=lax"


async def test_sign_in_without_a_csrf_token_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    response = await client.post("/sign-in", data={"email": email, "password": PASSWORD})
    assert_refused(response)
    assert len(await sessions_of(app, email)) == 1  # only sign-up's


async def test_sign_in_with_a_token_minted_for_another_browser_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    settings = app.state.settings
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as attacker:
        stolen = csrf_from((await attacker.get("/sign-in")).text)
    await client.get("/sign-in")  # this browser has its own CSRF cookie
    response = await client.post(
        "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": stolen}
    )
    assert_refused(response)


async def test_a_token_without_its_cookie_is_refused(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    token = csrf_from((await client.get("/sign-in")).text)
    client.cookies.clear()
    response = await client.post(
        "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert_refused(response)


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:8001", "null"])
async def test_a_valid_token_from_another_origin_is_refused(
    client: httpx.AsyncClient, origin: str
) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    token = csrf_from((await client.get("/sign-in")).text)
    response = await client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": origin},
    )
    assert_refused(response)


async def test_a_valid_token_from_our_own_origin_is_accepted(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    token = csrf_from((await client.get("/sign-in")).text)
    response = await client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "http://127.0.0.1:8000"},
    )
    assert response.status_code == 303


async def test_sign_up_without_a_csrf_token_creates_no_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = unique_email()
    await client.get("/sign-up")
    response = await client.post("/sign-up", data={"email": email, "password": PASSWORD})
    assert_refused(response)
    assert (
        await db_scalar(app, select(func.count()).select_from(User).where(User.email == email)) == 0
    )


async def test_sign_out_without_a_csrf_token_keeps_the_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    response = await client.post("/sign-out", data={"csrf_token": "forged"})
    assert_refused(response)
    assert [s.revoked_at for s in await sessions_of(app, email)] == [None]
    assert (await client.get("/account")).status_code == 200


async def test_password_change_without_a_csrf_token_changes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    before = (await user_by_email(app, email)).password_hash
    response = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "a brand new password"},
    )
    assert_refused(response)
    assert (await user_by_email(app, email)).password_hash == before


async def test_sign_out_everywhere_else_without_a_csrf_token_keeps_other_sessions(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    settings = app.state.settings
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as other:
        token = csrf_from((await other.get("/sign-in")).text)
        signed_in = await other.post(
            "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert signed_in.status_code == 303
    response = await client.post("/account/sessions/revoke-others", data={})
    assert_refused(response)
    assert [s.revoked_at for s in await sessions_of(app, email)] == [None, None]


async def test_profile_change_without_a_csrf_token_changes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client, name="Ada")
    response = await client.post("/account/profile", data={"name": "Mallory"})
    assert_refused(response)
    assert (await user_by_email(app, email)).name == "Ada"


# Not form endpoints: clients call them with their own credentials (RFC 6749 §3.2, RFC 7591,
# the MCP bearer token), never with a browser's cookies, so no CSRF token applies.
NOT_FORMS = {"/token", "/revoke", "/introspect", "/register", "/mcp"}


def _post_paths(routes: Iterable[BaseRoute]) -> set[str]:
    """Every POST path, through included routers (FastAPI keeps them nested; no prefixes here)."""
    found: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute) and "POST" in route.methods:
            found.add(route.path)
        elif (included := getattr(route, "original_router", None)) is not None:
            found |= _post_paths(included.routes)
    return found


async def test_every_form_post_without_a_csrf_token_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await sign_up(client)
    posts = sorted(p for p in _post_paths(app.routes) if p not in NOT_FORMS)
    assert "/consent" in posts
    assert "/account/security/totp/disable" in posts
    assert "/second-factor/passkey" in posts
    for path in posts:
        url = path.replace("{", "").replace("}", "")  # a path parameter's name as its value
        response = await client.post(url, data={"csrf_token": "forged"})
        assert response.status_code == 403, path
        assert REFUSAL in response.text, path
