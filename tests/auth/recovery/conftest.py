"""Fixtures for the account-recovery journeys: an app whose mail goes to a real SMTP server."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from app.mail.outbox import Outbox
from tests.conftest import (
    ROOT,
    TEST_SECRET_KEY,
    TEST_VAULT_KEYS,
    Backend,
    client_for,
    make_settings,
    running_app,
)
from tests.mail.smtp_server import Mailbox, Received, smtp_server

__all__ = ["smtp_server"]

_addresses = (f"10.88.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture(scope="session")
async def mail_app(
    backend: Backend, smtp_server: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """The app with SMTP_URL pointing at the test SMTP server (retries quick, for the tests)."""
    settings = make_settings(
        backend,
        tmp_path_factory.mktemp("mail-var"),
        smtp_url=smtp_server.url,
        mail_from="Gatehouse Test <gatehouse@example.com>",
        mail_backoff=0.05,
        mail_timeout=10,
    )
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def client(mail_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own address, so per-IP limits bound each test, not the session."""
    async with client_for(mail_app, next(_addresses)) as c:
        yield c


def outbox_of(app: FastAPI) -> Outbox:
    outbox: Outbox = app.state.outbox
    return outbox


async def delivered(app: FastAPI, mailbox: Mailbox, address: str, count: int = 1) -> Received:
    """The `count`-th message to `address`, once everything queued has been handled."""
    await asyncio.wait_for(outbox_of(app).idle(), 30)
    return (await mailbox.wait_for(address, count))[count - 1]


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


async def gatehouse(app: FastAPI, *args: str) -> CliResult:
    """`python -m app ARGS` against the app's own database and settings."""
    settings = app.state.settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": settings.public_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        "VAR_DIR": str(settings.var_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    return CliResult(process.returncode or 0, out.decode(), err.decode())
