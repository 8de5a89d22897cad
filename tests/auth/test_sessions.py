"""Browser sessions: idle and absolute expiry, sign-out, password change, signing out elsewhere.

Time passes by moving a session's timestamps in the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.auth.models import BrowserSession, User
from app.db import utcnow
from tests.helpers import (
    PASSWORD,
    db_write,
    form_post,
    sessions_of,
    sign_in,
    sign_up,
    user_by_email,
)

SIGN_IN_AGAIN = "/sign-in?next=%2Faccount"
IDLE_TTL = timedelta(days=7)


@pytest.fixture
async def second_browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(
        transport=transport, base_url=app.state.settings.public_url
    ) as other:
        yield other


async def move_session(app: FastAPI, session_id: object, **values: object) -> None:
    await db_write(
        app, update(BrowserSession).where(BrowserSession.id == session_id).values(values)
    )


async def seen_six_days_ago(client: httpx.AsyncClient, app: FastAPI) -> tuple[str, BrowserSession]:
    """A new account and its one session, last seen six days ago: a day of idle time left."""
    email = await sign_up(client)
    (record,) = await sessions_of(app, email)
    now = utcnow()
    six_days_ago, tomorrow = now - timedelta(days=6), now + timedelta(days=1)
    await move_session(app, record.id, last_seen_at=six_days_ago, idle_expires_at=tomorrow)
    return email, record


async def test_a_session_idle_for_longer_than_the_idle_limit_ends(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    (record,) = await sessions_of(app, email)
    now = utcnow()
    await move_session(
        app, record.id, last_seen_at=now - IDLE_TTL, idle_expires_at=now - timedelta(seconds=1)
    )
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == SIGN_IN_AGAIN


async def test_a_session_past_its_absolute_expiry_ends_even_if_active(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    (record,) = await sessions_of(app, email)
    now = utcnow()
    await move_session(
        app,
        record.id,
        created_at=now - timedelta(days=30),
        last_seen_at=now,
        idle_expires_at=now + IDLE_TTL,
        expires_at=now - timedelta(seconds=1),
    )
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == SIGN_IN_AGAIN


async def test_activity_extends_the_idle_expiry(client: httpx.AsyncClient, app: FastAPI) -> None:
    email, record = await seen_six_days_ago(client, app)
    before = utcnow()
    assert (await client.get("/account")).status_code == 200
    after = utcnow()
    (moved,) = await sessions_of(app, email)
    assert before <= moved.last_seen_at <= after
    assert before + IDLE_TTL <= moved.idle_expires_at <= after + IDLE_TTL
    assert moved.expires_at == record.expires_at


async def test_activity_never_extends_the_idle_expiry_past_the_absolute_expiry(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    (record,) = await sessions_of(app, email)
    now = utcnow()
    end = now + timedelta(hours=1)
    await move_session(
        app,
        record.id,
        last_seen_at=now - timedelta(days=6),
        idle_expires_at=now + timedelta(minutes=5),
        expires_at=end,
    )
    assert (await client.get("/account")).status_code == 200
    (moved,) = await sessions_of(app, email)
    assert moved.idle_expires_at == moved.expires_at == end


async def test_sign_out_revokes_the_session_and_clears_the_cookie(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    token = client.cookies["gh_session"]
    response = await form_post(client, "/account", "/sign-out", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    (cookie,) = response.headers.get_list("set-cookie")
    assert cookie.startswith('gh_session=""; expires=')
    assert cookie.endswith("; HttpOnly; Max-Age=0; Path=/; SameSite=lax")
    (record,) = await sessions_of(app, email)
    assert record.revoked_at is not None
    # A copy of the old cookie is worth nothing now.
    client.cookies.set("gh_session", token)
    replay = await client.get("/account")
    assert replay.status_code == 303
    assert replay.headers["location"] == SIGN_IN_AGAIN


async def test_password_change_revokes_other_sessions_and_keeps_this_one(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert (await sign_in(second_browser, email)).status_code == 303
    response = await form_post(
        client,
        "/account",
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new password"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account?notice=password"
    this, other = await sessions_of(app, email)
    assert this.revoked_at is None
    assert other.revoked_at is not None
    assert (await client.get("/account")).status_code == 200
    assert (await second_browser.get("/account")).headers["location"] == SIGN_IN_AGAIN
    client.cookies.delete("gh_session")
    assert (await sign_in(client, email)).status_code == 401
    assert (await sign_in(client, email, "a brand new password")).status_code == 303


async def test_password_change_with_a_wrong_current_password_changes_nothing(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert (await sign_in(second_browser, email)).status_code == 303
    before = (await user_by_email(app, email)).password_hash
    response = await form_post(
        client,
        "/account",
        "/account/password",
        {"current_password": "not my password", "new_password": "a brand new password"},
    )
    assert response.status_code == 400
    assert "The current password is not right." in response.text
    assert (await user_by_email(app, email)).password_hash == before
    assert [s.revoked_at for s in await sessions_of(app, email)] == [None, None]


async def test_sign_out_everywhere_else_revokes_every_other_session(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert (await sign_in(second_browser, email)).status_code == 303
    response = await form_post(client, "/account", "/account/sessions/revoke-others", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/account?notice=sessions"
    this, other = await sessions_of(app, email)
    assert this.revoked_at is None
    assert other.revoked_at is not None
    assert (await client.get("/account")).status_code == 200
    assert (await second_browser.get("/account")).headers["location"] == SIGN_IN_AGAIN


async def test_signing_out_one_other_session_leaves_this_one(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert (await sign_in(second_browser, email)).status_code == 303
    this, other = await sessions_of(app, email)
    response = await form_post(client, "/account", f"/account/sessions/{other.id}/revoke", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/account?notice=session"
    this, other = await sessions_of(app, email)
    assert (this.revoked_at, other.revoked_at is not None) == (None, True)


async def test_nobody_can_sign_out_another_users_session(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    victim = await sign_up(second_browser)
    (target,) = await sessions_of(app, victim)
    await sign_up(client)
    response = await form_post(client, "/account", f"/account/sessions/{target.id}/revoke", {})
    assert response.status_code == 404
    assert [s.revoked_at for s in await sessions_of(app, victim)] == [None]


async def test_account_page_lists_only_live_sessions(
    client: httpx.AsyncClient, second_browser: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert (await sign_in(second_browser, email)).status_code == 303
    assert (await client.get("/account")).text.count('class="session-row"') == 2
    await form_post(second_browser, "/account", "/sign-out", {})
    page = (await client.get("/account")).text
    assert page.count('class="session-row"') == 1
    assert "(this session)" in page


async def test_disabling_a_user_ends_their_sessions(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    await db_write(app, update(User).where(User.email == email).values(disabled_at=utcnow()))
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == SIGN_IN_AGAIN


async def test_account_page_without_a_session_redirects_to_sign_in_with_next(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/account", params={"notice": "profile"})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Faccount%3Fnotice%3Dprofile"


async def test_a_forged_session_cookie_is_ignored(client: httpx.AsyncClient) -> None:
    client.cookies.set("gh_session", "gh_s_" + "A" * 43)
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == SIGN_IN_AGAIN


async def test_the_sign_in_page_sends_a_signed_in_person_on_and_counts_it_as_activity(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email, _ = await seen_six_days_ago(client, app)
    before = utcnow()
    response = await client.get("/sign-in", params={"next": "/account?tab=apps"})
    assert response.status_code == 303
    assert response.headers["location"] == "/account?tab=apps"
    (moved,) = await sessions_of(app, email)
    assert before <= moved.last_seen_at <= utcnow()  # the slide is committed like any page's


@pytest.mark.parametrize("cookie", ["expired", "unknown", "not-a-session-token"])
async def test_the_sign_in_page_shows_the_form_to_a_browser_whose_cookie_is_no_session(
    client: httpx.AsyncClient, app: FastAPI, cookie: str
) -> None:
    email = await sign_up(client)
    (record,) = await sessions_of(app, email)
    if cookie == "expired":
        now = utcnow()
        await move_session(app, record.id, expires_at=now - timedelta(seconds=1))
    else:
        name = next(c.name for c in client.cookies.jar if c.name.endswith("gh_session"))
        value = "gh_s_" + "x" * 43 if cookie == "unknown" else cookie
        client.cookies.set(name, value)
    response = await client.get("/sign-in", params={"next": "/account"})
    assert response.status_code == 200
    assert 'name="next" value="/account"' in response.text
    assert 'id="password"' in response.text
