"""`gatehouse users`: create, list, disable and enable accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.cli import common
from app.oauth import admin

app = typer.Typer(help="User accounts.", no_args_is_help=True)


@app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Email address (the sign-in name).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create a user account."""
    settings = common.settings()

    async def work(session: AsyncSession) -> str:
        user = await service.create_user(session, email=email, password=password, name=name)
        return str(user.id)

    try:
        user_id = common.with_session(settings, work)
    except service.AccountError as exc:
        raise common.fail(str(exc)) from exc
    typer.echo(f"created {email} ({user_id})")


async def _rows(session: AsyncSession) -> list[str]:
    rows = []
    for user in await service.list_users(session):
        state = "disabled" if user.disabled_at else "active"
        rows.append(f"{user.id}  {user.email:<40} {state:<8}  {user.name}")
    return rows


@app.command("list")
def users_list() -> None:
    """List user accounts."""
    common.echo_rows(common.with_session(common.settings(), _rows), "no users yet")


def _set_disabled(email: str, disabled: bool) -> None:
    async def work(session: AsyncSession) -> int | None:
        user = await service.find_user_by_email(session, email)
        if user is None:
            return None
        await service.set_disabled(session, user=user, disabled=disabled)
        return await admin.revoke_user_grants(session, user.id) if disabled else 0

    revoked = common.with_session(common.settings(), work)
    if revoked is None:
        raise common.fail(f"no user with email {email}")
    if disabled:
        typer.echo(f"disabled {email}: signed out, {revoked} grant(s) revoked")
    else:
        typer.echo(f"enabled {email}: they may sign in and approve clients again")


@app.command("disable")
def users_disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Disable an account: it can no longer sign in, its sessions end and every grant is
    revoked (refresh tokens at once, access tokens within 5 s). Final for those tokens:
    `users enable` does not bring them back."""
    _set_disabled(email, True)


@app.command("enable")
def users_enable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Enable a disabled account: the person can sign in again and must approve each client
    anew (the tokens from before the disable stay revoked)."""
    _set_disabled(email, False)
