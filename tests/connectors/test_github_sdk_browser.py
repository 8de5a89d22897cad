"""End to end: the MCP SDK client does the OAuth flow, a person in headless Chromium pastes their
GitHub token on the consent page, and the github_* tools act as that person; a second person sees
their own. An invalid token shows the form again and issues nothing; deny still works."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import func, select

from app.db import create_engine, create_sessionmaker
from app.oauth.models import OAuthGrant
from app.vault.models import Credential
from tests.conftest import Backend, LiveServer, start_server
from tests.connectors.fake_github import FakeGitHub
from tests.connectors.support import github_token
from tests.helpers import PASSWORD, sign_up
from tests.mcp.sdk_harness import (
    CALLBACK,
    BrowserApprover,
    MemoryStorage,
    http_client,
    oauth_provider,
)
from tests.oauth.flow import Authorization, register

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def github_server(
    backend: Backend, fake_github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        backend,
        tmp_path_factory.mktemp("github-live"),
        CONNECTORS="github",
        GITHUB_API_URL=fake_github.url,
        CREDENTIAL_LIMIT_IP="1000 per hour",
        SIGNIN_LIMIT_IP="1000 per 15 minutes",
    )
    yield server
    server.stop()


@dataclass
class GitHubApprover(BrowserApprover):
    """BrowserApprover that also pastes a GitHub token into the consent page's field."""

    github_token: str = ""

    async def approve(self, page: Any, captured: asyncio.Future[str]) -> None:
        if "/sign-in" in page.url:
            await page.fill("#email", self.email)
            await page.fill("#password", self.password)
            await page.click("button[type=submit]")
        await page.locator("#consent-heading").wait_for(timeout=10_000)
        self.consents_seen += 1
        field = page.locator("#credential-github")
        assert await field.get_attribute("type") == "password"
        await field.fill(self.github_token)
        await page.click("button[value=approve]")


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _use_tools(server: LiveServer, browser: Any, login: str) -> tuple[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url) as web:
        email = await sign_up(web)
    token = github_token(login)
    context = await browser.new_context()
    approver = GitHubApprover(context, email, github_token=token)
    provider = oauth_provider(f"{server.url}/mcp", approver, MemoryStorage(), scope=None)
    try:
        async with (
            http_client(provider) as http,
            Client(
                streamable_http_client(f"{server.url}/mcp", http_client=http), mode="auto"
            ) as client,
        ):
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"github_whoami", "github_list_repos", "github_search_issues"} <= names
            seen = {
                "whoami": _structured(await client.call_tool("github_whoami", {})),
                "repos": _structured(await client.call_tool("github_list_repos", {"per_page": 50})),
                "issues": _structured(
                    await client.call_tool("github_search_issues", {"query": "bug"})
                ),
            }
    finally:
        await context.close()
    assert approver.consents_seen == 1
    return token, seen


async def test_consent_collects_the_token_and_tools_act_as_each_person(
    github_server: LiveServer, browser: Any, fake_github: FakeGitHub
) -> None:
    alice_token, alice = await _use_tools(github_server, browser, "alice")
    bob_token, bob = await _use_tools(github_server, browser, "bob")

    assert alice["whoami"]["login"] == "alice"
    assert [r["full_name"] for r in alice["repos"]["repos"]] == [
        f"alice/project-{i}" for i in range(1, 8)
    ]
    assert all(i["title"].startswith("alice: ") for i in alice["issues"]["items"])
    assert bob["whoami"]["login"] == "bob"
    assert [r["full_name"] for r in bob["repos"]["repos"]] == [
        f"bob/project-{i}" for i in range(1, 4)
    ]
    assert all(i["title"].startswith("bob: ") for i in bob["issues"]["items"])
    # Validation at consent, then one call per tool, each with that person's own token.
    for token in (alice_token, bob_token):
        assert [r.path for r in fake_github.requests(token)] == [
            "/user",
            "/user",
            "/user/repos",
            "/search/issues",
        ]
    # The token never reaches the server's log.
    log = github_server.log.read_text()
    assert alice_token not in log
    assert bob_token not in log


async def _count(backend: Backend, model: type, user_email: str) -> int:
    from app.auth.models import User

    engine = create_engine(backend.url)
    try:
        async with create_sessionmaker(engine)() as session:
            stmt = (
                select(func.count())
                .select_from(model)
                .join(User, User.id == model.user_id)  # type: ignore[attr-defined]
                .where(User.email == user_email)
            )
            return int((await session.execute(stmt)).scalar_one())
    finally:
        await engine.dispose()


async def test_invalid_token_on_consent_issues_nothing_and_deny_still_works(
    github_server: LiveServer, browser: Any, fake_github: FakeGitHub, backend: Backend
) -> None:
    async with httpx.AsyncClient(base_url=github_server.url) as web:
        email = await sign_up(web)
        registered = await register(web, redirect_uris=[CALLBACK])
    auth = Authorization(registered["client_id"], redirect_uri=CALLBACK)
    context = await browser.new_context()
    page = await context.new_page()
    callbacks: list[str] = []

    async def on_callback(route: Any) -> None:
        callbacks.append(route.request.url)
        await route.fulfill(status=200, body="ok")

    await page.route(CALLBACK.rsplit("/", 1)[0] + "/**", on_callback)
    try:
        await page.goto(github_server.url + auth.url())
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.locator("#consent-heading").wait_for(timeout=10_000)
        bad = "ghp_expired_" + github_token("x")[-12:]
        await page.fill("#credential-github", bad)
        async with page.expect_response(lambda r: r.url.endswith("/consent")) as answer:
            await page.click("button[value=approve]")
        assert (await answer.value).status == 400
        alert = page.locator("#connect-github .error")
        await alert.wait_for(timeout=10_000)
        assert "did not accept" in await alert.inner_text()
        assert await page.input_value("#credential-github") == ""
        assert bad not in await page.content()
        assert len(fake_github.requests(bad)) == 1
        assert callbacks == []
        assert await _count(backend, OAuthGrant, email) == 0
        assert await _count(backend, Credential, email) == 0

        await page.click("button[value=deny]")
        for _ in range(100):
            if callbacks:
                break
            await asyncio.sleep(0.1)
        assert len(callbacks) == 1
        params = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[0]).query).items()}
        assert params["error"] == "access_denied"
        assert params["state"] == auth.state
        assert "code" not in params
        assert await _count(backend, OAuthGrant, email) == 0
    finally:
        with contextlib.suppress(PlaywrightTimeout):
            await context.close()
