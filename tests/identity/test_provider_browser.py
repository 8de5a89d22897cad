"""Headless Chromium journeys through a real OpenID provider (npm oidc-provider on Node 22):
JIT sign-up and sign-in from the sign-in page, linking a password account after its password,
a domain refusal, cancelling at the provider, and the MCP SDK client's whole OAuth flow with
the person signing in through the provider. Each journey runs once per database.

The Gatehouse server has sign-up closed and accounts made automatically for corp.example only
(the usual company set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import TimeoutError as PlaywrightTimeout

from app.auth import service as accounts
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from tests.conftest import TEST_SECRET_KEY, Backend, LiveServer, free_port, start_server
from tests.helpers import PASSWORD
from tests.identity.real_provider import CLIENT_ID, CLIENT_SECRET, RealProvider, real_provider
from tests.mcp.sdk_harness import (
    BrowserApprover,
    MemoryStorage,
    http_client,
    oauth_provider,
)

pytestmark = pytest.mark.browser
LABEL = "Corp SSO"


@dataclass(frozen=True)
class Deployment:
    server: LiveServer
    provider: RealProvider


@pytest.fixture(scope="session")
def deployment(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("provider-live")
    port = free_port()
    callback = f"http://127.0.0.1:{port}/sign-in/corp/callback"
    with real_provider([callback], tmp) as provider:
        server = start_server(
            backend,
            tmp,
            port=port,
            ALLOW_SIGNUP="false",
            OIDC_PROVIDERS="corp",
            OIDC_CORP_ISSUER=provider.issuer,
            OIDC_CORP_CLIENT_ID=CLIENT_ID,
            OIDC_CORP_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_CORP_LABEL=LABEL,
            OIDC_CORP_ALLOWED_DOMAINS="corp.example",
        )
        try:
            yield Deployment(server, provider)
        finally:
            server.stop()


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context()  # a fresh browser: no cookies here or at the provider
    yield ctx
    await ctx.close()


async def _password_account(backend: Backend, tmp: Any, email: str) -> None:
    """A Gatehouse account made the way the admin CLI makes one (sign-up is closed here)."""
    settings = Settings(database_url=backend.url, secret_key=TEST_SECRET_KEY, var_dir=tmp).check()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if await accounts.find_user_by_email(session, email) is None:
                await accounts.create_user(session, email=email, password=PASSWORD)
    finally:
        await engine.dispose()


async def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's own pages: its login form (any password), then its consent screen."""
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "whatever-the-provider-wants")
    await page.click("button[type=submit]")
    consent = page.locator("button:has-text('Continue')")
    with contextlib.suppress(PlaywrightTimeout):  # consent given before: straight back
        await consent.wait_for(timeout=5000)
    if await consent.count():
        await consent.click()


async def test_a_new_person_gets_an_account_then_signs_in_again_from_the_sign_in_page(
    deployment: Deployment, context: Any
) -> None:
    page = await context.new_page()
    await page.goto(f"{deployment.server.url}/sign-in")
    await page.click(f"text=Continue with {LABEL}")
    assert page.url.startswith(deployment.provider.issuer)
    await sign_in_at_provider(page, "alice")
    await page.wait_for_url(f"{deployment.server.url}/account")
    assert await page.text_content("#account-email") == "alice@corp.example"
    assert "Corp SSO · alice@corp.example" in (await page.text_content(".identity-row") or "")

    await page.get_by_role("button", name="Sign out of Gatehouse", exact=True).click()
    await page.wait_for_url(f"{deployment.server.url}/sign-in")
    await page.click(f"text=Continue with {LABEL}")
    # Still signed in at the provider: it sends the person straight back.
    await page.wait_for_url(f"{deployment.server.url}/account")
    assert await page.text_content("#account-email") == "alice@corp.example"


async def test_a_password_account_is_linked_after_its_password(
    deployment: Deployment, context: Any, backend: Backend, tmp_path: Any
) -> None:
    await _password_account(backend, tmp_path, "bob@corp.example")
    page = await context.new_page()
    await page.goto(f"{deployment.server.url}/sign-in")
    await page.click(f"text=Continue with {LABEL}")
    await sign_in_at_provider(page, "bob")
    await page.wait_for_url(f"{deployment.server.url}/sign-in/corp/link")
    assert await page.text_content("#link-email") == "bob@corp.example"
    await page.fill("#password", "not the password")
    await page.click("#link-submit")
    assert "That password is not right." in await page.content()
    await page.fill("#password", PASSWORD)
    await page.click("#link-submit")
    await page.wait_for_url(f"{deployment.server.url}/account")
    assert await page.text_content("#account-email") == "bob@corp.example"
    assert "Corp SSO" in (await page.text_content(".identity-row") or "")


async def test_a_domain_that_is_not_allowed_is_told_who_to_ask(
    deployment: Deployment, context: Any
) -> None:
    page = await context.new_page()
    await page.goto(f"{deployment.server.url}/sign-in")
    await page.click(f"text=Continue with {LABEL}")
    await sign_in_at_provider(page, "mallory")
    message = page.locator("#identity-message")
    await message.wait_for()
    assert await message.get_attribute("data-reason") == "domain_not_allowed"
    assert "Ask the administrator of this Gatehouse" in (await message.text_content() or "")
    assert page.url.startswith(f"{deployment.server.url}/sign-in/corp/callback")


async def test_cancelling_at_the_provider_comes_back_to_a_plain_page(
    deployment: Deployment, context: Any
) -> None:
    page = await context.new_page()
    await page.goto(f"{deployment.server.url}/sign-in?next=/account/apps")
    await page.click(f"text=Continue with {LABEL}")
    await page.wait_for_selector("input[name=login]")
    await page.click("text=[ Cancel ]")
    message = page.locator("#identity-message")
    await message.wait_for()
    assert await message.get_attribute("data-reason") == "cancelled"
    assert f"You cancelled signing in with {LABEL}" in (await message.text_content() or "")
    await page.click("#sign-in-again")
    await page.wait_for_url(f"{deployment.server.url}/sign-in?next=%2Faccount%2Fapps")


@dataclass
class ProviderApprover(BrowserApprover):
    """The person of the MCP SDK journey, signing in to Gatehouse through the provider."""

    login: str = ""

    async def approve(self, page: Any, captured: asyncio.Future[str]) -> None:
        await page.click(f"text=Continue with {LABEL}")  # from Gatehouse's sign-in page
        await sign_in_at_provider(page, self.login)
        await page.locator("#consent-heading").wait_for()  # Gatehouse's consent, request intact
        self.consents_seen += 1
        await page.click("button[value=approve]")


async def test_the_mcp_sdk_client_connects_with_the_person_signing_in_through_the_provider(
    deployment: Deployment, context: Any
) -> None:
    url = f"{deployment.server.url}/mcp"
    approver = ProviderApprover(context, "carol@corp.example", login="carol")
    storage = MemoryStorage()
    provider = oauth_provider(url, approver, storage, scope=None)
    async with (
        http_client(provider) as http,
        Client(streamable_http_client(url, http_client=http), mode="auto") as client,
    ):
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    assert result.structured_content is not None
    assert result.structured_content["email"] == "carol@corp.example"
    assert result.structured_content["scopes"] == ["mcp", "mcp:write"]
    assert approver.consents_seen == 1
    assert "/authorize?" in approver.authorize_urls[0]
