"""The OAuth journey in headless Chromium against a real server: a registered client and a
client ID metadata document client, each from discovery to revocation; and a denial."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Backend, LiveServer, free_port, start_server
from tests.helpers import PASSWORD, unique_email
from tests.oauth.flow import Authorization, exchange, refresh, register
from tests.oauth.support import unverified_claims
from tests.oauth.tls_server import Certificates, Route, TlsServer, make_certificates

pytestmark = pytest.mark.browser
# Where the consent page screenshots go, for a person to look at.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir()))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("browser-cimd-tls"))


@pytest.fixture(scope="module")
async def documents(certs: Certificates) -> AsyncIterator[TlsServer]:
    server = TlsServer(certs)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def cimd_server(backend: Backend, certs: Certificates, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(
        backend, tmp_path, CIMD_CA_BUNDLE=str(certs.ca_file), CIMD_ALLOW_LOOPBACK="true"
    )
    yield server
    server.stop()


class Callback:
    """The client's loopback redirect URI, answered inside the browser: no server needed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}/callback"
        self.seen: list[str] = []

    async def attach(self, context: Any) -> None:
        async def fulfil(route: Any) -> None:
            self.seen.append(route.request.url)
            await route.fulfill(status=200, content_type="text/plain", body="back in the app")

        await context.route(f"http://127.0.0.1:{self.port}/callback**", fulfil)

    def params(self) -> dict[str, str]:
        assert len(self.seen) == 1, self.seen
        return {k: v[0] for k, v in parse_qs(urlsplit(self.seen[0]).query).items()}


async def sign_up_then_out(page: Any, server: LiveServer) -> str:
    email = unique_email("oauth-browser")
    await page.goto(server.url + "/sign-up")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(server.url + "/connect")
    await page.context.clear_cookies()
    return email


async def authorize_in_browser(
    page: Any, server: LiveServer, auth: Authorization, email: str
) -> None:
    """Open the authorization URL signed out, sign in, and arrive at the consent page."""
    await page.goto(server.url + auth.url())
    await page.wait_for_url(f"{server.url}/sign-in?next=**")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{server.url}/authorize?**")
    await page.locator("#client-name").wait_for()


async def approve_and_collect_code(
    page: Any, callback: Callback, auth: Authorization, server: LiveServer
) -> str:
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(f"{callback.uri}?**")
    params = callback.params()
    assert params["state"] == auth.state
    assert params["iss"] == server.url
    return params["code"]


async def token_refresh_revoke(client: httpx.AsyncClient, auth: Authorization, code: str) -> None:
    tokens = await exchange(client, auth, code)
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["scope"] == "mcp mcp:write"
    assert unverified_claims(issued["access_token"])["client_id"] == auth.client_id
    refreshed = await refresh(client, auth.client_id, issued["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    successor = refreshed.json()["refresh_token"]
    revoked = await client.post("/revoke", data={"token": successor, "client_id": auth.client_id})
    assert revoked.status_code == 200
    after = await refresh(client, auth.client_id, successor)
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


async def test_registered_client_journey(browser: Any, live_server: LiveServer) -> None:
    callback = Callback()
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        meta = (await client.get("/.well-known/oauth-authorization-server")).json()
        assert meta["registration_endpoint"] == live_server.url + "/register"
        registered = await register(
            client, redirect_uris=[callback.uri], client_name="Browser Test Client"
        )
        auth = Authorization(
            registered["client_id"], redirect_uri=callback.uri, resource=live_server.url + "/mcp"
        )
        context = await browser.new_context()
        await callback.attach(context)
        page = await context.new_page()
        email = await sign_up_then_out(page, live_server)
        await authorize_in_browser(page, live_server, auth, email)

        assert await page.locator("#client-name").text_content() == "Browser Test Client"
        assert "unverified" in (await page.locator("#client-domain").text_content() or "")
        assert await page.locator("#redirect-host").text_content() == (
            "127.0.0.1 (an app on this device)"
        )
        assert await page.locator('input[name="scope"][value="mcp:write"]').is_checked()
        await page.screenshot(path=SCREENSHOTS / "consent.png", full_page=True)

        code = await approve_and_collect_code(page, callback, auth, live_server)
        await context.close()
        await token_refresh_revoke(client, auth, code)


async def test_cimd_client_journey(
    browser: Any, cimd_server: LiveServer, documents: TlsServer
) -> None:
    callback = Callback()
    path = f"/clients/{callback.port}/metadata.json"
    client_id = documents.url(path)
    documents.routes[path] = Route(
        body=json.dumps(
            {
                "client_id": client_id,
                "client_name": "Document Client",
                "redirect_uris": [callback.uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    auth = Authorization(client_id, redirect_uri=callback.uri)
    context = await browser.new_context()
    await callback.attach(context)
    page = await context.new_page()
    email = await sign_up_then_out(page, cimd_server)
    await authorize_in_browser(page, cimd_server, auth, email)

    assert await page.locator("#client-name").text_content() == "Document Client"
    assert await page.locator("#client-domain").text_content() == "localhost"
    await page.screenshot(path=SCREENSHOTS / "consent-cimd.png", full_page=True)

    code = await approve_and_collect_code(page, callback, auth, cimd_server)
    await context.close()
    assert documents.hits[path] >= 1
    async with httpx.AsyncClient(base_url=cimd_server.url) as client:
        await token_refresh_revoke(client, auth, code)


async def test_deny_in_the_browser_returns_access_denied(
    browser: Any, live_server: LiveServer
) -> None:
    callback = Callback()
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        registered = await register(client, redirect_uris=[callback.uri])
    auth = Authorization(registered["client_id"], redirect_uri=callback.uri)
    context = await browser.new_context()
    await callback.attach(context)
    page = await context.new_page()
    email = await sign_up_then_out(page, live_server)
    await authorize_in_browser(page, live_server, auth, email)
    await page.get_by_role("button", name="Deny").click()
    await page.wait_for_url(f"{callback.uri}?**")
    params = callback.params()
    await context.close()
    assert params["error"] == "access_denied"
    assert params["state"] == auth.state
    assert params["iss"] == live_server.url
    assert "code" not in params
