"""Fixtures for sign-in through upstream providers: a stand-in OpenID provider whose ID tokens
each test chooses, a stand-in for GitHub, and an app configured with both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Backend, client_for, make_settings, running_app
from tests.identity import fake_github_oauth, stub_idp
from tests.identity.fake_github_oauth import FakeGitHubOAuth
from tests.identity.stub_idp import StubIdp


@pytest.fixture(scope="session")
def stub() -> Iterator[StubIdp]:
    with stub_idp.running_stub() as idp:
        yield idp


@pytest.fixture(scope="session")
def fake_github() -> Iterator[FakeGitHubOAuth]:
    with fake_github_oauth.running_fake_github() as fake:
        yield fake


def provider_settings(stub: StubIdp, github: FakeGitHubOAuth) -> dict[str, str]:
    return {
        "oidc_providers": "stub,github",
        "OIDC_STUB_ISSUER": stub.url,
        "OIDC_STUB_CLIENT_ID": stub_idp.CLIENT_ID,
        "OIDC_STUB_CLIENT_SECRET": stub_idp.CLIENT_SECRET,
        "OIDC_STUB_LABEL": "Stub ID",
        "OIDC_GITHUB_ISSUER": github.url,
        "OIDC_GITHUB_CLIENT_ID": fake_github_oauth.CLIENT_ID,
        "OIDC_GITHUB_CLIENT_SECRET": fake_github_oauth.CLIENT_SECRET,
        "github_api_url": github.url,
    }


@pytest.fixture(scope="session")
async def idp_app(
    backend: Backend,
    stub: StubIdp,
    fake_github: FakeGitHubOAuth,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend, tmp_path_factory.mktemp("idp-var"), **provider_settings(stub, fake_github)
    )
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def web(idp_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(idp_app) as client:
        yield client


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path
