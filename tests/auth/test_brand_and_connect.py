"""BRAND_NAME / BRAND_LOGO_PATH on every page, /connect, and the device names of sessions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.auth.device_names import device_name
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import csrf_from, form_post, sign_up

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_the_brand_name_and_logo_are_on_every_page(backend: Backend, tmp_path: Path) -> None:
    logo = tmp_path / "acme.png"
    logo.write_bytes(PNG)
    settings = make_settings(
        backend, tmp_path, brand_name="Acme <Tools>", brand_logo_path=str(logo)
    )
    async with running_app(settings) as app, client_for(app) as client:
        sign_in_page = await client.get("/sign-in")
        assert "<title>Sign in · Acme &lt;Tools&gt;</title>" in sign_in_page.text
        assert '<img src="/brand/logo"' in sign_in_page.text
        served = await client.get("/brand/logo")
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert served.content == PNG
        await sign_up(client)
        account = await client.get("/account")
        assert "Acme &lt;Tools&gt;</a>" in account.text


async def test_without_a_brand_logo_the_gatehouse_logo_is_shown(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in")
    assert '<img src="/static/gatehouse.svg"' in page.text
    assert '<link rel="icon" href="/static/gatehouse.svg"' in page.text
    assert (await client.get("/brand/logo")).status_code == 404
    icon = await client.get("/static/gatehouse.svg")
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def test_sign_up_leads_to_the_connect_page_with_the_mcp_url(
    client: httpx.AsyncClient,
) -> None:
    form = await client.get("/sign-up")
    created = await client.post(
        "/sign-up",
        data={
            "csrf_token": csrf_from(form.text),
            "email": "new-connect@example.com",
            "password": "a-long-password",
            "name": "",
        },
        headers={"Origin": "http://127.0.0.1:8000"},
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/connect"
    page = await client.get("/connect")
    assert page.status_code == 200
    assert '<code id="mcp-url" class="url">http://127.0.0.1:8000/mcp</code>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/copy.js" defer></script>' in page.text


async def test_without_smtp_url_the_pages_say_the_mail_is_in_the_servers_log(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    account = await client.get("/account")
    assert "Email address unverified." in account.text
    assert 'id="mail-to-log"' in account.text
    assert "so the message is in the server's log" in account.text
    sent = await form_post(
        client, "/forgot-password", "/forgot-password", {"email": "x@example.com"}
    )
    assert "Check your email" in sent.text
    assert 'id="mail-to-log"' in sent.text


async def test_with_no_app_connected_the_apps_page_points_to_connect(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    apps = await client.get("/account/apps")
    assert "No apps are connected to your account yet." in apps.text
    assert '<a href="/connect">Connect a client</a>' in apps.text


async def test_the_connect_page_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    client.cookies.clear()
    refused = await client.get("/connect")
    assert refused.status_code == 303
    assert refused.headers["location"] == "/sign-in?next=%2Fconnect"


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Safari/537.36 Edg/131.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on macOS",
        ),
        ("curl/8.5.0", "curl"),
        (None, "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_device_names(user_agent: str | None, name: str) -> None:
    assert device_name(user_agent) == name
