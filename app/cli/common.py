"""What every command shares: the settings, one session per command, the vault's envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.problems import UPGRADE, Problem, where
from app.config import Settings, load_settings
from app.db import create_engine, create_sessionmaker
from app.kit.envelope import Envelope, LocalKeyProvider

if TYPE_CHECKING:
    from alembic.config import Config

    from app.oauth.signing_keys import SigningKeyLocked

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent.parent


# The database URL the command read, for app.cli.main's messages about its database.
loaded: list[Settings] = []


def settings(*, generate_secrets: bool = False) -> Settings:
    """The server's configuration (GATEHOUSE_ENV_FILE, VAR_DIR). Only `serve` generates the
    development secrets; every other command reads them, or says where it looked."""
    found = load_settings(generate_secrets=generate_secrets)
    loaded.append(found)
    return found


def require_database(settings: Settings) -> None:
    """A SQLite file that is not there is not created: it is the wrong directory, or new."""
    if settings.is_sqlite:
        database = make_url(settings.database_url).database or ""
        if database != ":memory:" and not Path(database).is_file():
            raise Problem(
                f"there is no database at {Path(database).resolve()}: run the command in the "
                "server's directory or set GATEHOUSE_ENV_FILE=/path/to/the/server/.env "
                f"(or DATABASE_URL); for a new database, {UPGRADE}"
            )


async def check_schema(settings: Settings) -> None:
    """The database answers and is migrated to the newest revision this code knows."""
    require_database(settings)
    head = head_revision(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            current = None
            if "alembic_version" in tables:
                row = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                current = row.scalar()
    finally:
        await engine.dispose()
    if current != head:
        state = "has no Gatehouse tables yet" if current is None else f"is at revision {current}"
        raise Problem(f"{where(settings.database_url)} {state} (this code needs {head}): {UPGRADE}")


async def check_signing_key(settings: Settings) -> None:
    """The active signing key opens with VAULT_KEYS (one is created if there is none): else
    every worker's start-up would fail, after the banner, with a traceback."""
    from app.oauth.signing_keys import SigningKeyLocked, SigningKeys

    vault = envelope(settings)
    engine = create_engine(settings.database_url)
    keys = SigningKeys(
        create_sessionmaker(engine), vault, access_token_ttl=settings.access_token_ttl
    )
    try:
        await keys.active()
    except SigningKeyLocked as exc:
        raise Problem(_locked(exc, vault.provider.kids(), where(settings.database_url))) from None
    finally:
        await engine.dispose()


def _locked(exc: SigningKeyLocked, kids: tuple[str, ...], place: str) -> str:
    # Both ids come from the row: printed as text, never as terminal control sequences.
    kid, sealed_kid = (_printable(value) for value in (exc.kid, exc.sealed_kid))
    sealed = f'the signing key {kid} in {place} is sealed under the vault key "{sealed_kid}"'
    if exc.sealed_kid in kids:
        return (
            f"{sealed}, and VAULT_KEYS' {sealed_kid} does not open it (another value under that "
            "name, or a damaged row): set VAULT_KEYS to the value this database was set up with"
        )
    return (
        f"{sealed}, but VAULT_KEYS holds {', '.join(kids)}: add {sealed_kid} back after "
        f"the active key (VAULT_KEYS={kids[0]}:…,{sealed_kid}:…) and start again; "
        f"`gatehouse vault rekey` then moves what {sealed_kid} sealed onto {kids[0]}"
    )


def _printable(text: str) -> str:
    return "".join(char for char in text if char.isprintable())


def head_revision(database_url: str) -> str | None:
    """The newest migration this code knows, read in a short-lived child process.

    `serve` asks this before it serves: importing alembic (and mako, and every SQLAlchemy
    dialect alembic registers) in the serving process would keep ~11 MiB of modules resident
    in it for good (bench/rss.py). An error in the child is raised here, as if read in-process.
    """
    with ProcessPoolExecutor(max_workers=1) as child:
        return child.submit(_head_revision, database_url).result()


def _head_revision(database_url: str) -> str | None:
    from alembic.script import ScriptDirectory  # see alembic_config

    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction, committed when it returns."""
    require_database(settings)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def envelope(settings: Settings) -> Envelope:
    return Envelope(LocalKeyProvider.from_env_value(settings.vault_keys_value))


def alembic_config(database_url: str) -> Config:
    # Loaded only by the commands that migrate: alembic takes half a second to import.
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def safe_database(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` in red on stderr; the Exit to raise."""
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


def echo_rows(rows: list[str], empty: str) -> None:
    for row in rows:
        typer.echo(row)
    if not rows:
        typer.echo(empty)
