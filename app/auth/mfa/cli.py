"""`gatehouse users reset-mfa EMAIL`: for a person who lost both the phone and the codes."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.auth import service
from app.auth.mfa import policy
from app.config import ConfigError, load_settings
from app.db import create_engine, create_sessionmaker


async def _reset(database_url: str, email: str) -> int | None:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await service.find_user_by_email(session, email)
            if user is None:
                return None
            return await policy.reset(session, user=user, actor="cli")
    finally:
        await engine.dispose()


def users_reset_mfa(email: Annotated[str, typer.Argument(help="The account's email.")]) -> None:
    """Remove every second factor of an account (TOTP, recovery codes, passkeys); audited."""
    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    removed = asyncio.run(_reset(settings.database_url, email))
    if removed is None:
        typer.secho(f"no user with email {email}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(
        f"removed {removed} second factor{'' if removed == 1 else 's'} of {email}; "
        "they sign in with their password alone until they set one up again"
    )
