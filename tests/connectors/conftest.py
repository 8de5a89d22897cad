"""Fixtures for the connector tests: the fake GitHub API and an app that calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from tests.conftest import Backend, make_settings, running_app
from tests.connectors.fake_github import FakeGitHub, fake_github

__all__ = ["fake_github", "github_app"]


@pytest.fixture(scope="session")
async def github_app(
    backend: Backend, fake_github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """An in-process app with the GitHub connector pointed at the fake API."""
    settings = make_settings(
        backend,
        tmp_path_factory.mktemp("github-app"),
        connectors=["github"],
        github_api_url=fake_github.url,
        credential_limit_ip="10000 per hour",
    )
    async with running_app(settings) as application:
        yield application
