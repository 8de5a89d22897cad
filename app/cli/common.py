"""What every command shares: the settings, one session per command, the vault's envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import ConfigError, Settings, load_settings
from app.db import create_engine, create_sessionmaker
from app.kit.envelope import Envelope, LocalKeyProvider

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent.parent


def settings() -> Settings:
    try:
        return load_settings()
    except (ConfigError, ValueError) as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc


def with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction, committed when it returns."""

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
