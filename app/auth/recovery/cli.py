"""`gatehouse users reset-password EMAIL`: a one-time link for an administrator to hand over."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.config import ConfigError, load_settings


def reset_password_command(
    email: Annotated[str, typer.Argument(help="The user's email.")],
) -> None:
    """Print a one-time link that lets the person choose a new password (valid 30 minutes)."""
    from app.auth.recovery.service import admin_reset_link
    from app.db import create_engine, create_sessionmaker

    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc

    async def run() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await admin_reset_link(session, settings, email=email)
        finally:
            await engine.dispose()

    link = asyncio.run(run())
    if link is None:
        typer.secho(f"no user with email {email}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(link)
    typer.echo(
        "Hand this link to the person over a channel you trust. It works once, for 30 minutes; "
        "using it signs out every session of the account.",
        err=True,
    )
