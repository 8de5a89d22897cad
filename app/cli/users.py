"""`gatehouse users`: create, list, disable and enable accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.auth.mfa import policy as mfa_policy
from app.auth.recovery.service import admin_reset_link
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
        user = await service.create_user(
            session, email=email, password=password, name=name, verified=True
        )
        return str(user.id)

    try:
        user_id = common.with_session(settings, work)
    except service.AccountError as exc:
        raise common.fail(str(exc)) from exc
    typer.echo(f"created {email} ({user_id})")


async def _rows(session: AsyncSession) -> list[str]:
    rows = []
    factors = await mfa_policy.summaries(session)
    for user in await service.list_users(session):
        state = "disabled" if user.disabled_at else "active"
        verified = "verified" if user.email_verified_at else "unverified"
        mfa = factors.get(user.id, mfa_policy.FactorSummary(totp=False, passkeys=0))
        second = f"2fa:{'totp' if mfa.totp else 'off'} passkeys:{mfa.passkeys}"
        rows.append(
            f"{user.id}  {user.email:<40} {state:<8} {verified:<10} {second:<22}  {user.name}"
        )
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


@app.command("reset-password")
def users_reset_password(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Print a one-time link that lets the person choose a new password (valid 30 minutes)."""
    settings = common.settings()

    async def work(session: AsyncSession) -> str | None:
        return await admin_reset_link(session, settings, email=email)

    link = common.with_session(settings, work)
    if link is None:
        raise common.fail(f"no user with email {email}")
    typer.echo(link)
    typer.echo(
        "Hand this link to the person over a channel you trust. It works once, for 30 minutes; "
        "using it signs out every session of the account.",
        err=True,
    )


@app.command("reset-mfa")
def users_reset_mfa(email: Annotated[str, typer.Argument(help="The account's email.")]) -> None:
    """Remove every second factor of an account (TOTP, recovery codes, passkeys); audited."""

    async def work(session: AsyncSession) -> int | None:
        user = await service.find_user_by_email(session, email)
        return None if user is None else await mfa_policy.reset(session, user=user, actor="cli")

    removed = common.with_session(common.settings(), work)
    if removed is None:
        raise common.fail(f"no user with email {email}")
    typer.echo(
        f"removed {removed} second factor{'' if removed == 1 else 's'} of {email}; "
        "they sign in with their password alone until they set one up again"
    )
