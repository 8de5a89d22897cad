"""The github_* tools act as the caller's connected account, page through results, and turn every
upstream failure into plain words: no upstream body, no secret, a link to reconnect."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.connectors.base import CredentialRejected, UpstreamUnavailable
from app.connectors.github import GitHubConnector
from app.kit.envelope import SecretValue
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.connectors.fake_github import UPSTREAM_MARKER, FakeGitHub
from tests.connectors.support import Person, call_tool, connected_person, error_text, structured

RECONNECT = "http://127.0.0.1:8000/account/credentials"


@pytest.fixture
async def alice(github_app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(github_app) as web:
        yield await connected_person(github_app, web, "alice")


@pytest.fixture
async def bob(github_app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(github_app) as web:
        yield await connected_person(github_app, web, "bob")


async def test_tools_answer_with_the_callers_own_github_account(
    alice: Person, bob: Person, fake_github: FakeGitHub
) -> None:
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me == {
        "login": "alice",
        "name": "Alice",
        "html_url": "https://github.example/alice",
        "public_repos": 7,
    }
    repos = structured(await call_tool(bob.web, bob.access_token, "github_list_repos"))
    assert [r["full_name"] for r in repos["repos"]] == [f"bob/project-{i}" for i in (1, 2, 3)]
    assert repos["has_next"] is False
    found = structured(
        await call_tool(alice.web, alice.access_token, "github_search_issues", {"query": "bug"})
    )
    assert found["total_count"] == 7
    assert all(item["title"].startswith("alice: ") for item in found["items"])

    # Each call carried the caller's own token, and only that.
    assert {r.path for r in fake_github.requests(alice.github_token)} >= {
        "/user",
        "/search/issues",
    }
    assert [r.path for r in fake_github.requests(bob.github_token)] == ["/user", "/user/repos"]


async def test_list_repos_pages_through_the_link_header(alice: Person) -> None:
    first = structured(
        await call_tool(alice.web, alice.access_token, "github_list_repos", {"per_page": 3})
    )
    assert [r["full_name"] for r in first["repos"]] == [f"alice/project-{i}" for i in (1, 2, 3)]
    assert first["has_next"] is True
    last = structured(
        await call_tool(
            alice.web, alice.access_token, "github_list_repos", {"per_page": 3, "page": 3}
        )
    )
    assert [r["full_name"] for r in last["repos"]] == ["alice/project-7"]
    assert last["page"] == 3
    assert last["has_next"] is False


async def test_search_issues_pages_and_bounds_per_page(alice: Person) -> None:
    second = structured(
        await call_tool(
            alice.web,
            alice.access_token,
            "github_search_issues",
            {"query": "bug", "per_page": 5, "page": 2},
        )
    )
    assert second["total_count"] == 7
    assert [i["number"] for i in second["items"]] == [6, 7]
    assert second["has_next"] is False
    assert second["items"][0]["pull_request"] is True
    too_many = await call_tool(
        alice.web, alice.access_token, "github_search_issues", {"query": "bug", "per_page": 500}
    )
    assert too_many["isError"] is True


def _assert_plain(text: str, person: Person) -> None:
    assert person.github_token not in text
    assert UPSTREAM_MARKER not in text
    assert "Bad credentials" not in text


async def test_expired_token_says_reconnect_with_the_credentials_page(
    alice: Person, fake_github: FakeGitHub
) -> None:
    fake_github.fail(alice.github_token, "expired")
    text = error_text(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert RECONNECT in text
    assert "refused your credential" in text
    _assert_plain(text, alice)


@pytest.mark.parametrize(
    ("mode", "lowest", "highest"), [("ratelimited", 100, 120), ("throttled", 42, 42)]
)
async def test_rate_limited_says_when_to_retry(
    alice: Person, fake_github: FakeGitHub, mode: str, lowest: int, highest: int
) -> None:
    fake_github.fail(alice.github_token, mode)
    text = error_text(await call_tool(alice.web, alice.access_token, "github_list_repos"))
    assert "rate-limiting" in text
    match = re.search(r"Try again in (\d+) seconds", text)
    assert match, text
    assert lowest <= int(match.group(1)) <= highest
    _assert_plain(text, alice)


async def test_not_found_is_said_plainly(alice: Person) -> None:
    text = error_text(
        await call_tool(
            alice.web, alice.access_token, "github_search_issues", {"query": "repo:missing/x bug"}
        )
    )
    assert "not found" in text
    _assert_plain(text, alice)


@pytest.mark.parametrize("mode", ["broken", "gateway"])
async def test_upstream_down_is_said_plainly_and_not_cached(
    alice: Person, fake_github: FakeGitHub, mode: str
) -> None:
    fake_github.fail(alice.github_token, mode)
    text = error_text(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert "not answering right now" in text
    _assert_plain(text, alice)
    fake_github.fail(alice.github_token, None)
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me["login"] == "alice"


async def test_no_credential_says_connect_one(github_app: FastAPI) -> None:
    async with client_for(github_app) as web:
        from tests.connectors.support import access_token
        from tests.helpers import sign_up

        await sign_up(web)
        bearer = await access_token(web)  # the GitHub field left empty
        text = error_text(await call_tool(web, bearer, "github_whoami"))
    assert f"No GitHub credential is connected. Connect one at {RECONNECT}" in text


async def test_slow_upstream_hits_the_timeout(
    backend: Backend, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    settings = make_settings(
        backend, tmp_path, connectors=["github"], github_api_url=fake_github.url
    )
    async with running_app(settings) as app, client_for(app) as web:
        person = await connected_person(app, web, "alice")
        # The production timeout is 10 s; a short one keeps the test quick.
        app.state.connectors["github"]._http.timeout = httpx.Timeout(0.5)
        fake_github.fail(person.github_token, "slow")
        text = error_text(await call_tool(web, person.access_token, "github_whoami"))
    assert "not answering right now" in text
    assert "timed out" in text
    _assert_plain(text, person)


async def test_validation_classifies_refused_and_slow_tokens(fake_github: FakeGitHub) -> None:
    connector = GitHubConnector(fake_github.url, timeout=httpx.Timeout(0.5))
    try:
        assert await connector.validate(SecretValue("ghp_carol_abc")) == "carol"
        with pytest.raises(CredentialRejected):
            await connector.validate(SecretValue("ghp_expired_abc"))
        with pytest.raises(UpstreamUnavailable, match="timed out"):
            await connector.validate(SecretValue("ghp_slow_abc"))
    finally:
        await connector.aclose()
    authorizations = [r.authorization for r in fake_github.requests() if "_abc" in (r.token or "")]
    assert "Bearer ghp_carol_abc" in authorizations
