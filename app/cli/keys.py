"""`gatehouse keys`: rotate the token signing key."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import common
from app.oauth import admin

app = typer.Typer(help="Token signing keys.", no_args_is_help=True)


@app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; the old one stays published until its tokens have expired."""
    settings = common.settings()
    envelope = common.envelope(settings)

    async def work(session: AsyncSession) -> tuple[str, list[str]]:
        new, retired = await admin.rotate_signing_key(session, envelope)
        return new.kid, retired

    kid, retired = common.with_session(settings, work)
    typer.echo(f"active signing key: {kid}")
    for old in retired:
        typer.echo(f"retired (still published until its tokens expire): {old}")
