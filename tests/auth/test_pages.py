"""The pages: security headers, escaping, accessible forms, closed sign-up, and the audit trail."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit import AuditEvent
from app.auth.models import User
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    csrf_from,
    db_all,
    db_scalar,
    form_post,
    sign_in,
    sign_up,
    unique_email,
    user_by_email,
)


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = [part.split() for part in policy.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def assert_page_headers(response: httpx.Response) -> None:
    csp = csp_directives(response)
    assert csp["frame-ancestors"] == ["'none'"]
    # Only our own script files may run (the passkey helper): no inline script, no other origin.
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    # Script only as files from our origin: every <script> tag is empty, with a /static src.
    for tag in re.finditer(r"<script\b", response.text, flags=re.IGNORECASE):
        rest = response.text[tag.start() :]
        assert re.match(r'<script src="/static/[a-z]+\.js" defer></script>', rest), rest[:80]


@pytest.mark.parametrize("path", ["/sign-in", "/sign-up"])
async def test_pages_send_a_strict_csp_and_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(response)


async def test_account_page_sends_a_strict_csp_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    response = await client.get("/account")
    assert response.status_code == 200
    assert_page_headers(response)
    assert response.headers["cache-control"] == "no-store"


async def test_error_pages_send_a_strict_csp_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    refused = await client.post("/sign-in", data={"email": email, "password": PASSWORD})
    assert refused.status_code == 403
    assert_page_headers(refused)
    failed = await sign_in(client, email, "not the password")
    assert failed.status_code == 401
    assert_page_headers(failed)


async def test_a_name_with_markup_is_escaped_on_the_account_page(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, name="<script>alert(1)</script>")
    page = await client.get("/account")
    assert page.status_code == 200
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
    assert "<script>" not in page.text


async def test_a_user_agent_with_markup_is_escaped_in_the_session_list(
    client: httpx.AsyncClient,
) -> None:
    client.headers["User-Agent"] = '"><img src=x onerror=alert(1)>'
    await sign_up(client)
    page = await client.get("/account")
    assert page.status_code == 200
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in page.text  # the only <img> is the logo


LABELLED = re.compile(r'<label for="([^"]+)"')
INPUT_ID = re.compile(r'<input id="([^"]+)"')


@pytest.mark.parametrize("path", ["/sign-in", "/sign-up"])
async def test_every_visible_field_has_a_label(client: httpx.AsyncClient, path: str) -> None:
    page = (await client.get(path)).text
    assert set(INPUT_ID.findall(page)) == set(LABELLED.findall(page)) != set()


async def test_account_page_fields_have_labels(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    page = (await client.get("/account")).text
    assert (
        set(INPUT_ID.findall(page))
        == set(LABELLED.findall(page))
        == {
            "name",
            "current_password",
            "new_password",
        }
    )


# -- ALLOW_SIGNUP=false ----------------------------------------------------------------------------


async def test_closed_sign_up_is_404_for_get_and_post_and_creates_nobody(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, allow_signup=False)
    email = unique_email()
    async with running_app(settings) as app, client_for(app) as client:
        assert (await client.get("/sign-up")).status_code == 404
        token = csrf_from((await client.get("/sign-in")).text)
        response = await client.post(
            "/sign-up", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 404
        assert response.headers.get_list("set-cookie") == []
        count = select(func.count()).select_from(User).where(User.email == email)
        assert await db_scalar(app, count) == 0


async def test_closed_sign_up_is_not_offered_on_the_sign_in_page(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, allow_signup=False)
    async with running_app(settings) as app, client_for(app) as client:
        page = await client.get("/sign-in")
        assert page.status_code == 200
        assert "/sign-up" not in page.text


async def test_open_sign_up_is_offered_on_the_sign_in_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in")
    assert '<a href="/sign-up">Create one</a>' in page.text


# -- audit events ----------------------------------------------------------------------------------


async def audit_of(app: FastAPI, email: str) -> list[tuple[str, str | None, dict[str, object]]]:
    user = await user_by_email(app, email)
    rows = await db_all(
        app,
        select(AuditEvent.kind, AuditEvent.ip, AuditEvent.detail)
        .where(AuditEvent.user_id == user.id)
        .order_by(AuditEvent.at),
    )
    return [(kind, ip, detail) for kind, ip, detail in rows]


async def test_sign_up_writes_user_created_and_sign_in_events(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    assert await audit_of(app, email) == [
        ("user.created", "127.0.0.1", {}),
        ("signin.success", "127.0.0.1", {"method": "sign-up"}),
    ]


async def test_sign_in_writes_a_success_event(client: httpx.AsyncClient, app: FastAPI) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    await sign_in(client, email)
    assert (await audit_of(app, email))[-1] == ("signin.success", "127.0.0.1", {})


async def test_a_wrong_password_writes_a_failure_event(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    client.cookies.delete("gh_session")
    await sign_in(client, email, "not the password")
    assert (await audit_of(app, email))[-1] == (
        "signin.failure",
        "127.0.0.1",
        {"email": email, "reason": "bad_credentials"},
    )


async def test_an_unknown_email_writes_a_failure_event_with_no_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = unique_email("nobody")
    await sign_in(client, email, "not the password")
    rows = await db_all(
        app,
        select(AuditEvent.kind, AuditEvent.user_id, AuditEvent.detail).where(
            AuditEvent.kind == "signin.failure"
        ),
    )
    assert ("signin.failure", None, {"email": email, "reason": "bad_credentials"}) in rows


async def test_sign_out_writes_an_event(client: httpx.AsyncClient, app: FastAPI) -> None:
    email = await sign_up(client)
    await form_post(client, "/account", "/sign-out", {})
    assert (await audit_of(app, email))[-1] == ("signout", "127.0.0.1", {})


async def test_password_change_writes_an_event(client: httpx.AsyncClient, app: FastAPI) -> None:
    email = await sign_up(client)
    response = await form_post(
        client,
        "/account",
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new password"},
    )
    assert response.status_code == 303
    assert (await audit_of(app, email))[-1] == ("password.changed", "127.0.0.1", {})


async def test_a_throttled_sign_in_writes_an_event(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="1 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await sign_up(client)
        client.cookies.delete("gh_session")
        await sign_in(client, email, "not the password")
        assert (await sign_in(client, email)).status_code == 429
        rows = await db_all(
            app,
            select(AuditEvent.kind, AuditEvent.ip, AuditEvent.detail).where(
                AuditEvent.kind == "signin.throttled"
            ),
        )
        assert ("signin.throttled", "127.0.0.1", {"email": email}) in rows
