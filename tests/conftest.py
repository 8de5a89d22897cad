"""Shared fixtures: real databases, the app in-process, a live server, headless Chromium.

Every test that takes `backend` (directly or through `app`/`client`/`live_server`) runs once per
database. PostgreSQL is at POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test); each
test session creates its own database there and drops it afterwards. Under CI=true a missing
PostgreSQL or Chromium fails the run; elsewhere those tests are skipped with a message saying what
to install.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TEST_SECRET_KEY = "test-secret-key-" + "x" * 40
TEST_VAULT_KEYS = "test1:" + "A" * 43 + "="


def missing(what: str, how: str) -> None:
    """Fail under CI, skip elsewhere: a real component the test needs is not there."""
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Backend:
    name: str
    url: str  # the URL Gatehouse is configured with

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"


async def _admin_execute(sql: str) -> None:
    import asyncpg

    url = make_url(POSTGRES_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        database=url.database,
        password=url.password,
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _upgrade(database_url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "gatehouse.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(_upgrade, url)
        yield Backend("sqlite", url)
        return
    name = f"gatehouse_test_{uuid.uuid4().hex[:10]}"
    try:
        await _admin_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means "not available"
        missing("PostgreSQL", f"start it at {POSTGRES_URL} ({type(exc).__name__}: {exc})")
    url = str(make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name))
    await asyncio.to_thread(_upgrade, url)
    yield Backend("postgresql", url)
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(backend: Backend, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": backend.url,
        "public_url": "http://127.0.0.1:8000",
        "secret_key": TEST_SECRET_KEY,
        "vault_keys": TEST_VAULT_KEYS,
        "var_dir": tmp,
        "signin_limit_ip": "1000 per 15 minutes",
        "signup_limit_ip": "10000 per hour",
        "registration_limit_ip": "10000 per hour",
    }
    values.update(overrides)
    return Settings(**values).check()


@asynccontextmanager
async def lifespan_in_own_task(application: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan in one task from start to end, as a server does.

    The MCP SDK's session managers hold anyio task groups, which must be exited by the task that
    entered them; pytest-asyncio finalises fixtures in another task.
    """
    started = asyncio.Event()
    stop = asyncio.Event()

    async def run() -> None:
        async with application.router.lifespan_context(application):
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises the start-up error
    try:
        yield application
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
async def app(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend, tmp_path_factory.mktemp("var")))
    async with lifespan_in_own_task(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = app.state.settings
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as c:
        yield c


# -- a live server process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    backend: Backend,
    tmp: Path,
    *,
    port: int | None = None,
    public_host: str = "127.0.0.1",
    **env_overrides: str,
) -> LiveServer:
    """`python -m app serve` as a real process, the way `make run` starts it (on `port`, when
    the test must know it first: an identity provider registers its callback URL).

    `public_host="localhost"` for WebAuthn, whose RP ID cannot be an IP address."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": backend.url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_URL": f"http://{public_host}:{port}",
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        "VAR_DIR": str(tmp),
        "SIGNUP_LIMIT_IP": "10000 per hour",
        "REGISTRATION_LIMIT_IP": "10000 per hour",
        **env_overrides,
    }
    log = tmp / f"server-{port}.log"
    with log.open("wb") as output:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = env["PUBLIC_URL"]
    deadline = time.monotonic() + 90  # generous: a loaded 2-core machine starts slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.wait()
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return LiveServer(url, process, log, env)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def live_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(backend, tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


# -- headless Chromium ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing("Chromium", "install Debian's chromium package (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        await chromium.close()


# -- more databases and apps, for tests that need their own ----------------------------------------


@pytest.fixture
async def empty_database(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a brand-new database with no tables, on the same kind of server as `backend`."""
    if not backend.is_postgres:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"gatehouse_empty_{uuid.uuid4().hex[:10]}"
    await _admin_execute(f'CREATE DATABASE "{name}"')
    yield str(make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name))
    await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A dedicated app with its own engine and rate limits, lifespan entered."""
    application = create_app(settings)
    async with lifespan_in_own_task(application):
        yield application


def client_for(application: FastAPI, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of `application` whose requests come from client_ip."""
    settings: Settings = application.state.settings
    transport = httpx.ASGITransport(app=application, client=(client_ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=settings.public_url)


# -- Redis ---------------------------------------------------------------------------------------

# Databases the tests use on the Redis at 127.0.0.1:6379; emptied when a test session starts so
# counters left by an earlier run (rate limits, cache entries) cannot change this run's results.
TEST_REDIS_DATABASES = (11, 13)


@pytest.fixture(scope="session", autouse=True)
def _fresh_test_redis_databases() -> None:
    import redis

    for db in TEST_REDIS_DATABASES:
        try:
            client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=2)
            client.flushdb()
            client.close()
        except redis.RedisError:
            return  # no Redis here: the tests that need it say so themselves
