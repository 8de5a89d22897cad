"""The official MCP SDK client with a headless browser standing in for the person.

`BrowserApprover` is the OAuthClientProvider's redirect/callback pair: it opens the authorize URL
in Chromium, signs in (or up), approves (optionally leaving out mcp:write) and captures the
redirect to the client's loopback callback with Playwright's routing, so no callback server is
needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.helpers import PASSWORD

CALLBACK = "http://127.0.0.1:47231/callback"


@dataclass
class MemoryStorage(TokenStorage):
    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class BrowserApprover:
    """Plays the person: signs in and approves in a real browser context."""

    context: Any  # playwright BrowserContext
    email: str
    password: str = PASSWORD
    grant_write: bool = True
    second_factor: Callable[[], str] | None = None  # a code for /second-factor, if asked
    consents_seen: int = 0
    authorize_urls: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)  # "POST /sign-in 303": what went wrong where
    _result: asyncio.Future[AuthorizationCodeResult] | None = None

    async def redirect(self, url: str) -> None:
        self.authorize_urls.append(url)
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        page = await self.context.new_page()
        captured: asyncio.Future[str] = loop.create_future()

        async def on_callback(route: Any) -> None:
            if not captured.done():
                captured.set_result(route.request.url)
            await route.fulfill(status=200, body="ok")

        def on_response(response: Any) -> None:
            if response.request.is_navigation_request():
                path = urlsplit(response.url).path
                self.visited.append(f"{response.request.method} {path} {response.status}")

        page.on("response", on_response)
        await page.route(CALLBACK.rsplit("/", 1)[0] + "/**", on_callback)
        await page.goto(url)
        await self.approve(page, captured)
        location = await asyncio.wait_for(captured, timeout=15)
        await page.close()
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        # An error answer (RFC 6749 §4.1.2.1) says why in error and error_description.
        assert "code" in params, f"sent back without a code: {params}, via {self.visited}"
        self._result.set_result(
            AuthorizationCodeResult(
                code=params["code"], state=params.get("state"), iss=params.get("iss")
            )
        )

    async def approve(self, page: Any, captured: asyncio.Future[str]) -> None:
        """The person's part, from the authorize URL until the browser heads back to the client
        (`captured` is done once it has). Subclasses sign in or fill the consent page their way."""
        if "/sign-in" in page.url and not captured.done():
            await page.fill("#email", self.email)
            await page.fill("#password", self.password)
            await page.click("button[type=submit]")
            if self.second_factor is not None:
                await page.wait_for_url("**/second-factor")
                await page.fill("#code", self.second_factor())
                await page.click("button[type=submit]")
        heading = page.locator("#consent-heading")
        with contextlib.suppress(PlaywrightTimeout):  # consent remembered: straight back
            await heading.wait_for(timeout=3000)
        if await heading.count():
            self.consents_seen += 1
            if not self.grant_write:
                box = page.locator("input[name=scope][value='mcp:write']")
                if await box.count():
                    await box.uncheck()
            await page.click("button[value=approve]")

    async def callback(self) -> AuthorizationCodeResult:
        assert self._result is not None, "callback before redirect"
        return await self._result


def oauth_provider(
    server_url: str, approver: BrowserApprover, storage: MemoryStorage, *, scope: str | None
) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="SDK test client",
        redirect_uris=[CALLBACK],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        scope=scope,
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=approver.redirect,
        callback_handler=approver.callback,
    )


def http_client(provider: OAuthClientProvider) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(auth=provider, timeout=30)
