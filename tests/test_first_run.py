"""Every mistake a newcomer can make at start-up or in the CLI ends in one clear line.

Each case runs `python -m app …` as a person does, from a folder of its own (so nothing lands in
the checkout), and asserts the exit code, that stderr and stdout together are at most two lines,
that they name the cause and the fix, and that there is no traceback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.db import create_engine, create_sessionmaker
from app.kit.envelope import Envelope, LocalKeyProvider
from app.oauth.models import SigningKey
from app.oauth.signing_keys import create_signing_key
from tests.conftest import (
    POSTGRES_URL,
    ROOT,
    TEST_SECRET_KEY,
    TEST_VAULT_KEYS,
    Backend,
    _admin_execute,
    _upgrade,
    free_port,
)

# Variables a developer's shell may carry that would change what the command reads.
CLEARED = ("DATABASE_URL", "SECRET_KEY", "VAULT_KEYS", "VAR_DIR", "GATEHOUSE_ENV_FILE", "PORT")


@dataclass
class Outcome:
    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def gatehouse(*args: str, cwd: Path, **env: str) -> Outcome:
    base = {k: v for k, v in os.environ.items() if k not in CLEARED and k != "LOG_LEVEL"}
    process = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in (process.stdout + process.stderr).splitlines() if line.strip()]
    return Outcome(process.returncode, lines)


def assert_one_clear_failure(outcome: Outcome, *words: str) -> None:
    assert outcome.code != 0, outcome.text
    assert len(outcome.lines) <= 2, outcome.text
    assert "Traceback" not in outcome.text
    assert "serving" not in outcome.text
    for word in words:
        assert word in outcome.text, f"{word!r} not in:\n{outcome.text}"


def secrets_env() -> dict[str, str]:
    return {"SECRET_KEY": TEST_SECRET_KEY, "VAULT_KEYS": TEST_VAULT_KEYS}


def postgres(database: str, user: str = "postgres", port: int | None = None) -> str:
    url = make_url(POSTGRES_URL).set(username=user, database=database)
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the checkout to run commands from."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_a_missing_postgres_database_prints_the_createdb_line(elsewhere: Path) -> None:
    name = f"gatehouse_absent_{uuid.uuid4().hex[:8]}"
    outcome = gatehouse(
        "serve", cwd=elsewhere, DATABASE_URL=postgres(name), PORT=str(free_port()), **secrets_env()
    )
    assert_one_clear_failure(
        outcome, f'"{name}" on 127.0.0.1:5432 does not exist', "createdb -h", "db upgrade"
    )


def test_an_unreachable_database_names_the_host_and_the_variable(elsewhere: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    outcome = gatehouse(
        "users", "list", cwd=elsewhere, DATABASE_URL=postgres("gatehouse", port=port)
    )
    assert_one_clear_failure(outcome, "cannot reach", f"127.0.0.1:{port}", "DATABASE_URL")


def test_a_wrong_role_names_the_user_and_the_variable(elsewhere: Path) -> None:
    outcome = gatehouse(
        "serve",
        cwd=elsewhere,
        DATABASE_URL=postgres("postgres", user="nobody_here"),
        PORT=str(free_port()),
        **secrets_env(),
    )
    assert_one_clear_failure(outcome, "refused the user 'nobody_here'", "DATABASE_URL")


async def test_a_database_without_tables_says_to_run_db_upgrade(
    backend: Backend, elsewhere: Path
) -> None:
    if backend.is_postgres:
        name = f"gatehouse_bare_{uuid.uuid4().hex[:8]}"
        await _admin_execute(f'CREATE DATABASE "{name}"')
        url = postgres(name)
    else:
        (elsewhere / "bare.db").touch()
        url = f"sqlite:///{elsewhere / 'bare.db'}"
    try:
        serve = gatehouse("serve", cwd=elsewhere, DATABASE_URL=url, PORT=str(free_port()))
        listing = gatehouse("users", "list", cwd=elsewhere, DATABASE_URL=url)
    finally:
        if backend.is_postgres:
            await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert_one_clear_failure(serve, "no Gatehouse tables", "run `gatehouse db upgrade`")
    assert_one_clear_failure(listing, "no Gatehouse tables", "run `gatehouse db upgrade`")
    assert not (elsewhere / "var").exists(), "serve generated secrets before the checks passed"


@asynccontextmanager
async def fresh_database(backend: Backend, folder: Path) -> AsyncIterator[str]:
    """A database of its own at the newest revision, dropped afterwards."""
    if backend.is_postgres:
        name = f"gatehouse_keys_{uuid.uuid4().hex[:8]}"
        await _admin_execute(f'CREATE DATABASE "{name}"')
        url = str(make_url(postgres(name)).set(drivername="postgresql+asyncpg"))
    else:
        url = f"sqlite+aiosqlite:///{folder / 'keys.db'}"
    try:
        await asyncio.to_thread(_upgrade, url)
        yield url
    finally:
        if backend.is_postgres:
            await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _signing_key_rows(url: str, *, create_with: str | None = None) -> list[tuple[str, str]]:
    """The signing keys' (kid, sealing vault key), after creating one sealed with `create_with`."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if create_with is not None:
                envelope = Envelope(LocalKeyProvider.from_env_value(create_with))
                await create_signing_key(session, envelope)
            rows = await session.execute(select(SigningKey.kid, SigningKey.sealed_kid))
            return [(kid, sealed) for kid, sealed in rows]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("vault_keys", "words"),
    [
        # k1 dropped from VAULT_KEYS before `gatehouse vault rekey` moved the signing key off it
        ("k2:" + "B" * 43 + "=", ('vault key "test1"', "VAULT_KEYS holds k2", "vault rekey")),
        # another value under the same name: a development key generated again, a typo
        ("test1:" + "B" * 43 + "=", ('vault key "test1"', "does not open it", "VAULT_KEYS")),
    ],
    ids=["key-removed", "key-replaced"],
)
async def test_a_signing_key_the_vault_keys_cannot_open_is_one_line_naming_the_key(
    backend: Backend, elsewhere: Path, vault_keys: str, words: tuple[str, ...]
) -> None:
    """Start-up opens the active signing key; sealed under a vault key VAULT_KEYS no longer
    holds (or holds with other bytes), every worker's start-up failed with a traceback."""
    async with fresh_database(backend, elsewhere) as url:
        (key,) = await _signing_key_rows(url, create_with=TEST_VAULT_KEYS)
        outcome = gatehouse(
            "serve",
            cwd=elsewhere,
            DATABASE_URL=url,
            PORT=str(free_port()),
            SECRET_KEY=TEST_SECRET_KEY,
            VAULT_KEYS=vault_keys,
        )
        after = await _signing_key_rows(url)
    assert_one_clear_failure(outcome, f"signing key {key[0]}", *words)
    assert after == [key], "start-up created or changed a signing key"


def test_a_port_in_use_says_to_set_port_before_any_banner(
    backend: Backend, elsewhere: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = gatehouse(
            "serve", cwd=elsewhere, DATABASE_URL=backend.url, PORT=str(port), **secrets_env()
        )
    assert_one_clear_failure(outcome, f"port {port}", "already in use", "set PORT")


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("PORT", "abc", "an integer from 1 to 65535"),
        ("SIGNIN_LIMIT_IP", "lots", "10 per 15 minutes"),
        ("ALLOWED_ORIGINS", "notaurl", "https://app.example.com"),
        ("GATEHOUSE_ROLE", "both", "all, auth or mcp"),
        ("ACCESS_TOKEN_TTL", "5", "from 60 to 86400"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it_in_upper_case(
    elsewhere: Path, variable: str, value: str, accepted: str
) -> None:
    outcome = gatehouse("serve", cwd=elsewhere, **{variable: value})
    assert_one_clear_failure(outcome, variable, accepted)
    assert outcome.code == 2
    assert "pydantic" not in outcome.text
    assert len(outcome.lines) == 1


def test_two_bad_variables_are_two_lines(elsewhere: Path) -> None:
    outcome = gatehouse("serve", cwd=elsewhere, PORT="abc", SIGNUP_LIMIT_IP="often")
    assert_one_clear_failure(outcome, "PORT=", "SIGNUP_LIMIT_IP=")
    assert len(outcome.lines) == 2


@pytest.mark.parametrize("how", ["--debug", "LOG_LEVEL=debug"])
def test_debug_shows_the_traceback(elsewhere: Path, how: str) -> None:
    args, env = (["--debug"], {}) if how == "--debug" else ([], {"LOG_LEVEL": "debug"})
    outcome = gatehouse(*args, "users", "list", cwd=elsewhere, PORT="abc", **env)
    assert outcome.code != 0
    assert "Traceback" in outcome.text
    assert "PORT='abc'" in outcome.text


def test_the_cli_elsewhere_creates_nothing_and_says_where_it_looked(elsewhere: Path) -> None:
    listing = gatehouse("users", "list", cwd=elsewhere)
    rotate = gatehouse("keys", "rotate", cwd=elsewhere)
    assert_one_clear_failure(listing, str(elsewhere / "var" / "gatehouse.db"), "GATEHOUSE_ENV_FILE")
    assert_one_clear_failure(rotate, "GATEHOUSE_ENV_FILE")
    assert list(elsewhere.iterdir()) == [], "the CLI created files"


def test_a_gatehouse_env_file_naming_no_file_is_refused(elsewhere: Path) -> None:
    outcome = gatehouse("users", "list", cwd=elsewhere, GATEHOUSE_ENV_FILE="/nonexistent/.env")
    assert_one_clear_failure(outcome, "GATEHOUSE_ENV_FILE='/nonexistent/.env' names no file")


async def test_the_cli_elsewhere_finds_the_servers_database_through_gatehouse_env_file(
    backend: Backend, tmp_path: Path, elsewhere: Path
) -> None:
    """The server's folder holds its .env; the CLI run from elsewhere reads the same settings,
    and the same VAR_DIR and SQLite file (relative paths count from the .env's folder)."""
    server = tmp_path / "server"
    server.mkdir()
    if backend.is_postgres:
        name = f"gatehouse_envfile_{uuid.uuid4().hex[:8]}"
        await _admin_execute(f'CREATE DATABASE "{name}"')
        (server / ".env").write_text(f"DATABASE_URL={postgres(name)}\n")
    else:
        (server / ".env").write_text("DATABASE_URL=sqlite:///./var/gatehouse.db\n")
    try:
        assert gatehouse("db", "upgrade", cwd=server).code == 0
        created = gatehouse(
            "users",
            "create",
            "--email",
            "first@example.com",
            "--password",
            "a-long-password-1",
            cwd=elsewhere,
            GATEHOUSE_ENV_FILE=str(server / ".env"),
        )
        listing = gatehouse("users", "list", cwd=server)
    finally:
        if backend.is_postgres:
            await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert created.code == 0, created.text
    assert "first@example.com" in listing.text
    assert list(elsewhere.iterdir()) == []


def test_the_banner_names_the_cli_the_way_this_shell_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make run` leaves the CLI at .venv/bin/gatehouse, which no PATH names: the banner's
    "or from a shell" line says that path; with the venv on PATH, plain `gatehouse`."""
    from app.cli.serve import cli_command

    script = Path(sys.executable).parent / "gatehouse"
    if not script.exists():
        pytest.skip("the package is not installed into this interpreter's environment")
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    shown = cli_command()
    assert shown != "gatehouse"
    assert (ROOT / shown).resolve() == script.resolve()
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert cli_command() == "gatehouse"
