"""Small helpers the tests share: they drive the app through its HTTP surface, and read the
database directly only to check what that surface did (or to let time pass)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Executable, select

from app.auth.models import BrowserSession, User

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"
# A JWT-shaped token whose header is 4000 nested JSON arrays: under every length limit, but too
# deep for Python's JSON parser, which raises RecursionError rather than ValueError.
NESTED_HEADER_TOKEN = base64.urlsafe_b64encode(b"[" * 4000).rstrip(b"=").decode() + ".e30.c2ln"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


async def form_post(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """GET a page for its CSRF token, then POST the form as a browser would."""
    token = csrf_from((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf_token": token})


async def sign_up(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, name: str = ""
) -> str:
    email = email or unique_email()
    response = await form_post(
        client, "/sign-up", "/sign-up", {"email": email, "password": password, "name": name}
    )
    assert response.status_code == 303, response.text
    return email


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    return await form_post(
        client, "/sign-in", "/sign-in", {"email": email, "password": password, "next": next_path}
    )


# -- reading and moving database state (to check what the HTTP surface did, or let time pass) ----


def session_cookie(client: httpx.AsyncClient) -> str:
    """The browser-session token a client holds (plain http public URL: no __Host- prefix)."""
    token = client.cookies.get("gh_session")
    assert token, "client holds no session cookie"
    return token


async def db_all(app: FastAPI, stmt: Executable) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list((await session.execute(stmt)).all())


async def db_scalar(app: FastAPI, stmt: Executable) -> Any:
    async with app.state.sessionmaker() as session:
        return (await session.execute(stmt)).scalar_one_or_none()


async def db_write(app: FastAPI, stmt: Executable) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(stmt)


async def user_by_email(app: FastAPI, email: str) -> User:
    user = await db_scalar(app, select(User).where(User.email == email))
    assert user is not None, f"no user {email}"
    return user  # type: ignore[no-any-return]


async def sessions_of(app: FastAPI, email: str) -> list[BrowserSession]:
    user = await user_by_email(app, email)
    rows = await db_all(
        app,
        select(BrowserSession)
        .where(BrowserSession.user_id == user.id)
        .order_by(BrowserSession.created_at),
    )
    return [row[0] for row in rows]
