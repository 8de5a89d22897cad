"""The admin CLI, run as `python -m app ...` against a database of its own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.conftest import (
    POSTGRES_URL,
    ROOT,
    TEST_SECRET_KEY,
    TEST_VAULT_KEYS,
    Backend,
    _admin_execute,
    client_for,
    make_settings,
    running_app,
)
from tests.helpers import PASSWORD, sessions_of, sign_in, sign_up, unique_email
from tests.oauth.flow import Authorization, refresh, register
from tests.oauth.support import full_flow


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class CliDatabase:
    backend: Backend
    env: dict[str, str]
    var: Path

    async def run(self, *args: str, **extra_env: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            *args,
            cwd=ROOT,
            env={**self.env, **extra_env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await process.communicate()
        return Run(process.returncode or 0, out.decode(), err.decode())


@pytest.fixture(scope="module")
async def cli(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CliDatabase]:
    """A fresh database, migrated by `python -m app db upgrade`."""
    var = tmp_path_factory.mktemp("cli")
    name = f"gatehouse_cli_{uuid.uuid4().hex[:10]}"
    if backend.is_postgres:
        await _admin_execute(f'CREATE DATABASE "{name}"')
        url = str(make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name))
    else:
        url = f"sqlite+aiosqlite:///{var / 'cli.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        "VAR_DIR": str(var),
    }
    database = CliDatabase(Backend(backend.name, url), env, var)
    upgraded = await database.run("db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert upgraded.out.startswith("database at head: ")
    yield database
    if backend.is_postgres:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def cli_app(cli: CliDatabase) -> AsyncIterator[FastAPI]:
    """The app, serving the CLI's database."""
    async with running_app(make_settings(cli.backend, cli.var)) as app:
        yield app


async def create(cli: CliDatabase, email: str, name: str = "") -> str:
    created = await cli.run(
        "users", "create", "--email", email, "--password", PASSWORD, "--name", name
    )
    assert created.code == 0, created.err
    return created.out


async def test_users_create_adds_an_account_that_list_shows_active(cli: CliDatabase) -> None:
    email = unique_email("cli")
    out = await create(cli, email, name="Ada Lovelace")
    assert out.startswith(f"created {email} (")
    user_id = str(uuid.UUID(out.removeprefix(f"created {email} (").removesuffix(")\n")))
    listed = await cli.run("users", "list")
    assert listed.code == 0
    (row,) = [line for line in listed.out.splitlines() if email in line]
    assert row.split() == [
        user_id,
        email,
        "active",
        "verified",
        "2fa:off",
        "passkeys:0",
        "Ada",
        "Lovelace",
    ]


async def test_users_create_refuses_a_short_password(cli: CliDatabase) -> None:
    email = unique_email("cli")
    refused = await cli.run("users", "create", "--email", email, "--password", "short")
    assert refused.code == 1
    assert "Use at least 8 characters for the password." in refused.err


async def test_users_create_refuses_an_email_taken_in_another_case(cli: CliDatabase) -> None:
    email = unique_email("cli")
    await create(cli, email)
    refused = await cli.run("users", "create", "--email", email.upper(), "--password", PASSWORD)
    assert refused.code == 1
    assert "An account with this email already exists." in refused.err


async def test_users_disable_marks_the_account_disabled(cli: CliDatabase, cli_app: FastAPI) -> None:
    async with client_for(cli_app) as client:
        email = await sign_up(client)
    disabled = await cli.run("users", "disable", email.upper())
    assert disabled.code == 0
    assert disabled.out == f"disabled {email.upper()}: signed out, 0 grant(s) revoked\n"
    (row,) = [line for line in (await cli.run("users", "list")).out.splitlines() if email in line]
    assert row.split()[1:3] == [email, "disabled"]


async def test_a_disabled_user_cannot_sign_in_and_their_sessions_end(
    cli: CliDatabase, cli_app: FastAPI
) -> None:
    app = cli_app
    async with client_for(app) as client:
        email = await sign_up(client)
        assert (await client.get("/account")).status_code == 200

        assert (await cli.run("users", "disable", email)).code == 0

        ended = await client.get("/account")
        assert ended.status_code == 303
        assert ended.headers["location"] == "/sign-in?next=%2Faccount"
        assert all(s.revoked_at is not None for s in await sessions_of(app, email))
        client.cookies.delete("gh_session")
        assert (await sign_in(client, email)).status_code == 401


async def test_users_disable_of_an_unknown_email_exits_1(cli: CliDatabase) -> None:
    email = unique_email("nobody")
    refused = await cli.run("users", "disable", email)
    assert refused.code == 1
    assert refused.err == f"no user with email {email}\n"


async def test_a_bad_setting_exits_2_naming_the_variable(cli: CliDatabase) -> None:
    refused = await cli.run("users", "list", GATEHOUSE_ENV="production", SECRET_KEY="")
    assert refused.code == 2
    assert refused.err.startswith("configuration error: SECRET_KEY is required in production")


async def _refused_within(client: httpx.AsyncClient, token: str, *, bound: float) -> int:
    """/api/me's status for `token`, polled until refused or `bound` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + bound
    while True:
        status = (
            await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        ).status_code
        if status == 401 or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.25)


async def test_disable_then_enable_leaves_the_old_tokens_refused_and_asks_consent_anew(
    cli: CliDatabase, cli_app: FastAPI
) -> None:
    async with client_for(cli_app) as client:
        email = await sign_up(client)
        registered = await register(client)
        auth, tokens = await full_flow(client, registered["client_id"])
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.get("/api/me", headers=bearer)).status_code == 200

        disabled = await cli.run("users", "disable", email)
        assert disabled.out == f"disabled {email}: signed out, 1 grant(s) revoked\n"
        enabled = await cli.run("users", "enable", email)
        assert enabled.code == 0, enabled.err

        # The access token is refused within the 5 s revocation bound, and stays refused.
        assert await _refused_within(client, tokens["access_token"], bound=6.0) == 401
        refreshed = await refresh(client, registered["client_id"], tokens["refresh_token"])
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"

        # The person signs in again, and the client needs their approval again.
        client.cookies.delete("gh_session")
        assert (await sign_in(client, email)).status_code == 303
        again = await client.get(Authorization(registered["client_id"]).url())
        assert again.status_code == 200
        assert 'name="action" value="approve"' in again.text


def test_users_disable_help_says_it_is_final_for_existing_tokens() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "app", "users", "disable", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "every grant is revoked" in shown
    assert "does not bring them back" in " ".join(shown.split())
