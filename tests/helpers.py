"""Small helpers the tests share: they drive the app only through its HTTP surface."""

from __future__ import annotations

import re
import uuid

import httpx

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


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
