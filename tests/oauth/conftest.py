"""Fixtures for the authorization-server tests: a signed-in user and registered clients."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import session_cookie, sign_up
from tests.oauth.flow import register

_addresses = (f"10.77.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like the shared `client`, but from an address of its own, so that per-IP limits (30
    registrations an hour) bound each test rather than the whole session."""
    transport = httpx.ASGITransport(app=app, client=(next(_addresses), 50000))
    async with httpx.AsyncClient(transport=transport, base_url=app.state.settings.public_url) as c:
        yield c


@pytest.fixture(scope="session")
async def shared_user(app: FastAPI) -> tuple[str, str]:
    """One signed-up user per database, and its session token: password hashing is slow on
    purpose, and most tests only need someone signed in (each registers its own client)."""
    transport = httpx.ASGITransport(app=app, client=("10.76.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=app.state.settings.public_url) as c:
        email = await sign_up(c)
        return email, session_cookie(c)


@pytest.fixture
async def user(client: httpx.AsyncClient, shared_user: tuple[str, str]) -> str:
    """A user signed in on `client` (shared between tests); returns the email."""
    email, token = shared_user
    client.cookies.set("gh_session", token)
    return email


@pytest.fixture
async def fresh_user(client: httpx.AsyncClient) -> str:
    """A user of this test's own, signed in on `client`: for tests that change the account."""
    return await sign_up(client)


@pytest.fixture
async def public_client(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client)


@pytest.fixture
async def basic_client(client: httpx.AsyncClient) -> dict[str, Any]:
    """A confidential client that authenticates with client_secret_basic."""
    return await register(client, token_endpoint_auth_method="client_secret_basic")
