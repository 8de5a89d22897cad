"""The per-user cache of upstream reads: a repeat does not reach the upstream, users never share
entries, a replaced or deleted credential drops them; with REDIS_URL replicas share it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.connectors.cache import PREFIX, seconds_until_end_of_day
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.connectors.fake_github import FakeGitHub
from tests.connectors.support import (
    Person,
    call_tool,
    close_rate_limit_connections,
    connected_person,
    delete_credential,
    error_text,
    github_token,
    replace_credential,
    require_redis,
    structured,
)

REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
async def alice(github_app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(github_app) as web:
        yield await connected_person(github_app, web, "alice")


def reads(fake: FakeGitHub, token: str, path: str) -> int:
    return len([r for r in fake.requests(token) if r.path == path])


async def test_a_repeated_read_is_answered_from_the_cache(
    alice: Person, fake_github: FakeGitHub
) -> None:
    args = {"per_page": 2}
    first = structured(await call_tool(alice.web, alice.access_token, "github_list_repos", args))
    again = structured(await call_tool(alice.web, alice.access_token, "github_list_repos", args))
    assert again == first
    assert reads(fake_github, alice.github_token, "/user/repos") == 1
    # Other arguments are another entry.
    structured(await call_tool(alice.web, alice.access_token, "github_list_repos", {"per_page": 3}))
    assert reads(fake_github, alice.github_token, "/user/repos") == 2


async def test_users_never_share_entries(
    github_app: FastAPI, alice: Person, fake_github: FakeGitHub
) -> None:
    async with client_for(github_app) as web:
        bob = await connected_person(github_app, web, "bob")
        mine = structured(await call_tool(alice.web, alice.access_token, "github_list_repos"))
        theirs = structured(await call_tool(bob.web, bob.access_token, "github_list_repos"))
    assert {r["full_name"].split("/")[0] for r in mine["repos"]} == {"alice"}
    assert {r["full_name"].split("/")[0] for r in theirs["repos"]} == {"bob"}
    assert reads(fake_github, alice.github_token, "/user/repos") == 1
    assert reads(fake_github, bob.github_token, "/user/repos") == 1


async def test_replacing_the_credential_drops_cached_results(
    alice: Person, fake_github: FakeGitHub
) -> None:
    before = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert before["login"] == "alice"
    new_token = github_token("alicia")
    response = await replace_credential(alice.web, new_token)
    assert response.status_code == 303, response.text
    after = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert after["login"] == "alicia"
    assert reads(fake_github, new_token, "/user") == 2  # validation, then the call
    assert reads(fake_github, alice.github_token, "/user") == 2  # validation, first call


async def test_deleting_the_credential_drops_cached_results_and_tools_say_reconnect(
    alice: Person, fake_github: FakeGitHub
) -> None:
    structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    response = await delete_credential(alice.web)
    assert response.status_code == 303, response.text
    text = error_text(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert "No GitHub credential is connected" in text
    assert "http://127.0.0.1:8000/account/credentials" in text
    assert reads(fake_github, alice.github_token, "/user") == 2


async def test_fixed_ttl_and_end_of_day_lifetimes(
    backend: Backend, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    require_redis()
    redis = Redis.from_url(REDIS_URL)
    try:
        for ttl, zone in ((600, "UTC"), (None, "Pacific/Auckland")):
            settings = make_settings(
                backend,
                tmp_path / str(ttl),
                connectors=["github"],
                github_api_url=fake_github.url,
                redis_url=REDIS_URL,
                connector_cache_ttl=ttl,
                connector_cache_tz=zone,
                # Counters in Redis outlive the run: keep repeated runs under the limit.
                credential_limit_ip="10000 per hour",
            )
            async with running_app(settings) as app, client_for(app) as web:
                try:
                    person = await connected_person(app, web, "alice")
                    structured(await call_tool(web, person.access_token, "github_whoami"))
                finally:
                    close_rate_limit_connections(app)
            keys = [k async for k in redis.scan_iter(match=f"{PREFIX}{person.user_id}:*")]
            assert len(keys) == 1
            lifetime = await redis.ttl(keys[0])
            limit = ttl or seconds_until_end_of_day(zone)
            assert limit - 5 <= lifetime <= limit + 1
    finally:
        await redis.aclose()


async def test_redis_cache_is_shared_by_replicas_and_dropped_on_change(
    backend: Backend, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    def settings(name: str) -> object:
        return make_settings(
            backend,
            tmp_path / name,
            connectors=["github"],
            github_api_url=fake_github.url,
            redis_url=REDIS_URL,
            credential_limit_ip="10000 per hour",
        )

    require_redis()
    redis = Redis.from_url(REDIS_URL)
    try:
        async with (
            running_app(settings("one")) as one,  # type: ignore[arg-type]
            running_app(settings("two")) as two,  # type: ignore[arg-type]
            client_for(one) as web_one,
            client_for(two) as web_two,
        ):
            await check_shared_and_dropped(one, two, web_one, web_two, fake_github, redis)
    finally:
        await redis.aclose()


async def check_shared_and_dropped(
    one: FastAPI,
    two: FastAPI,
    web_one: httpx.AsyncClient,
    web_two: httpx.AsyncClient,
    fake_github: FakeGitHub,
    redis: Redis,
) -> None:
    try:
        alice = await connected_person(one, web_one, "alice")
        first = structured(await call_tool(web_one, alice.access_token, "github_list_repos"))
        # The other replica answers the same read from the shared cache.
        second = structured(await call_tool(web_two, alice.access_token, "github_list_repos"))
        assert second == first
        assert reads(fake_github, alice.github_token, "/user/repos") == 1
        mine = f"{PREFIX}{alice.user_id}:github:*"
        assert [k async for k in redis.scan_iter(match=mine)]

        # Replaced through replica one: replica two reads the new account upstream.
        new_token = github_token("alicia")
        assert (await replace_credential(alice.web, new_token)).status_code == 303
        assert not [k async for k in redis.scan_iter(match=mine)]
        again = structured(await call_tool(web_two, alice.access_token, "github_list_repos"))
        assert {r["full_name"].split("/")[0] for r in again["repos"]} == {"alicia"}
        assert reads(fake_github, new_token, "/user/repos") == 1

        # Deleted through replica one: replica two has nothing cached left to answer from.
        assert (await delete_credential(alice.web)).status_code == 303
        assert not [k async for k in redis.scan_iter(match=mine)]
        text = error_text(await call_tool(web_two, alice.access_token, "github_list_repos"))
        assert "No GitHub credential is connected" in text
        other = f"{PREFIX}{uuid.uuid4()}:github:*"
        assert not [k async for k in redis.scan_iter(match=other)]
    finally:
        for app in (one, two):
            close_rate_limit_connections(app)
