"""Redis away (REDIS_URL set, nothing answering): the rate-limited endpoints answer 503 with
Retry-After (a page at /sign-in, temporarily_unavailable JSON at /register), not a 500. A Redis
that accepts connections and never answers is the same outage, within the client timeouts
(app/kit/redis_url.py), and so is a hung Redis behind the connectors' cache."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.connectors.cache import RedisCache
from app.kit import redis_url
from app.kit.ratelimit import RateLimits
from tests.conftest import (
    TEST_REDIS_DATABASES,
    Backend,
    client_for,
    free_port,
    make_settings,
    running_app,
)
from tests.connectors.support import require_redis
from tests.helpers import PASSWORD, form_post


async def test_sign_in_and_registration_are_503_while_redis_is_away(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # a port nothing listens on
    settings = make_settings(backend, tmp_path, redis_url=nobody)
    async with running_app(settings) as app, client_for(app) as client:
        page = await form_post(
            client, "/sign-in", "/sign-in", {"email": "a@example.com", "password": PASSWORD}
        )
        assert page.status_code == 503, page.text
        assert page.headers["retry-after"] == "5"
        assert "Temporarily unavailable" in page.text
        registered = await client.post(
            "/register", json={"redirect_uris": ["https://a.example/cb"]}
        )
        assert registered.status_code == 503, registered.text
        assert registered.json()["error"] == "temporarily_unavailable"
        assert registered.headers["retry-after"] == "5"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- A Redis that accepts connections and never answers ------------------------------------------


@asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts every connection and never writes a byte: a hung Redis."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # whatever the client sends, until it gives up and closes
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


# Long enough for any bounded call to return on a busy machine, far shorter than "forever".
GUARD = 30


async def _sign_in_and_register(app: FastAPI) -> None:
    """Both rate-limited endpoints answer 503 + Retry-After, as for a Redis that is away."""
    try:
        async with client_for(app) as client:
            page = await asyncio.wait_for(
                form_post(
                    client,
                    "/sign-in",
                    "/sign-in",
                    {"email": "a@example.com", "password": PASSWORD},
                ),
                GUARD,
            )
            assert page.status_code == 503, page.text
            assert page.headers["retry-after"] == "5"
            assert "Temporarily unavailable" in page.text
            registered = await asyncio.wait_for(
                client.post("/register", json={"redirect_uris": ["https://a.example/cb"]}), GUARD
            )
            assert registered.status_code == 503, registered.text
            assert registered.json()["error"] == "temporarily_unavailable"
            assert registered.headers["retry-after"] == "5"
    finally:
        await app.state.rate_limits.aclose()


async def test_a_redis_that_never_answers_is_a_503_within_the_timeout(
    backend: Backend,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_url, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(redis_url, "COMMAND_TIMEOUT", 0.5)
    async with silent_redis() as hung:
        settings = make_settings(backend, tmp_path, redis_url=hung)
        async with running_app(settings) as app:
            await _sign_in_and_register(app)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("name", ["socket_timeout", "stream_timeout"])
async def test_a_timeout_in_redis_url_wins_over_the_default(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Defaults far past the guard: only the URL's own timeout can make the calls return.
    monkeypatch.setattr(redis_url, "COMMAND_TIMEOUT", 3600.0)
    async with silent_redis() as hung:
        settings = make_settings(backend, tmp_path, redis_url=f"{hung}?{name}=0.5")
        async with running_app(settings) as app:
            await _sign_in_and_register(app)


@pytest.mark.parametrize(
    "query", ["socket_timeout=0.5&socket_connect_timeout=1", "stream_timeout=0.5&connect_timeout=1"]
)
async def test_the_connectors_cache_gives_up_on_a_redis_that_never_answers(
    monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    monkeypatch.setattr(redis_url, "COMMAND_TIMEOUT", 3600.0)
    async with silent_redis() as hung:
        cache = RedisCache(f"{hung}?{query}", zone="UTC", fixed_ttl=60)
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(cache.get("some-user:github:key"), GUARD)
        finally:
            await cache.aclose()


async def test_the_connectors_cache_reaches_a_real_redis_through_a_url_with_timeouts() -> None:
    require_redis()
    url = f"redis://127.0.0.1:6379/{TEST_REDIS_DATABASES[1]}?stream_timeout=2&connect_timeout=2"
    cache = RedisCache(url, zone="UTC", fixed_ttl=60)
    key = f"timeouts-{uuid.uuid4().hex}:github:k"
    try:
        await cache.set(key, {"answer": 42})
        assert await cache.get(key) == {"answer": 42}
    finally:
        await cache.aclose()


def test_redis_url_timeouts_are_read_from_its_query_in_either_spelling() -> None:
    plain = redis_url.redis_target("redis://:pw@cache.internal:6379/2?ssl_cert_reqs=none")
    assert plain == redis_url.RedisTarget(
        url="redis://:pw@cache.internal:6379/2?ssl_cert_reqs=none",
        connect_timeout=redis_url.CONNECT_TIMEOUT,
        command_timeout=redis_url.COMMAND_TIMEOUT,
    )
    given = redis_url.redis_target(
        "rediss://cache.internal/0?connect_timeout=1.5&client_name=gh&stream_timeout=7"
    )
    assert given == redis_url.RedisTarget(
        url="rediss://cache.internal/0?client_name=gh", connect_timeout=1.5, command_timeout=7.0
    )
    redis_py = redis_url.redis_target("redis://h/0?socket_timeout=3&socket_connect_timeout=4")
    assert (redis_py.url, redis_py.connect_timeout, redis_py.command_timeout) == (
        "redis://h/0",
        4.0,
        3.0,
    )


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", ""])
def test_a_redis_url_timeout_that_is_not_seconds_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="socket_timeout in its query must be a positive number"):
        redis_url.redis_target(f"redis://127.0.0.1:6379/0?socket_timeout={value}")


async def test_the_rate_limits_reach_redis_through_a_url_without_a_port() -> None:
    # redis-py and coredis take 6379 when the URL names none; the limits package must too.
    require_redis()
    limits = RateLimits(f"redis://127.0.0.1/{TEST_REDIS_DATABASES[0]}")
    rule, key = limits.rule("1 per minute"), f"no-port-{uuid.uuid4().hex}"
    try:
        assert (await limits.hit(rule, "t", key)).allowed
        assert not (await limits.hit(rule, "t", key)).allowed
    finally:
        await limits.aclose()


async def test_a_unix_socket_redis_url_starts_and_fails_closed_while_redis_is_away(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # REDIS_URL accepts unix://; the rate limits must open it (not refuse it at start-up with
    # an error that echoes the URL), and a socket nobody listens on is an outage: 503.
    settings = make_settings(backend, tmp_path, redis_url=f"unix://{tmp_path}/nobody.sock")
    async with running_app(settings) as app:
        await _sign_in_and_register(app)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
