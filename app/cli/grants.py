"""`gatehouse grants`: list and revoke what users approved."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import common
from app.oauth import admin

app = typer.Typer(help="Grants users gave to clients.", no_args_is_help=True)


@app.command("list")
def grants_list(
    user: Annotated[str | None, typer.Option(help="Only this user's grants (email).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked grants.")] = False,
) -> None:
    """List grants: which user approved which client for which scopes."""

    async def work(session: AsyncSession) -> list[str]:
        return [
            f"{g.id}  {g.user.email:<32} {g.client.client_name or g.client.client_id:<24} "
            f"{g.scopes:<14} {'revoked' if g.revoked_at else 'active'}"
            for g in await admin.list_grants(session, user_email=user, include_revoked=all_)
        ]

    common.echo_rows(common.with_session(common.settings(), work), "no grants")


@app.command("revoke")
def grants_revoke(grant_id: Annotated[str, typer.Argument(help="The grant id.")]) -> None:
    """Revoke a grant: its refresh tokens fail at once, its access tokens within seconds."""
    try:
        parsed = uuid.UUID(grant_id)
    except ValueError as exc:
        typer.secho("the grant id must be a UUID (see `gatehouse grants list`)", err=True)
        raise typer.Exit(2) from exc

    async def work(session: AsyncSession) -> bool:
        return await admin.revoke_grant_by_admin(session, parsed)

    if not common.with_session(common.settings(), work):
        raise common.fail(f"no active grant {grant_id}")
    typer.echo(f"revoked grant {grant_id}")
