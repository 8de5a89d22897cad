"""`gatehouse purge`: delete what can never be used again."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import common
from app.housekeeping import purge
from app.oauth import admin


def purge_command() -> None:
    """Delete expired codes, tokens, sessions, used states, stale registrations and old keys."""
    settings = common.settings()
    window = admin.publish_window(settings.access_token_ttl)

    async def work(session: AsyncSession) -> dict[str, int]:
        return await purge(session, settings, window)

    counts = common.with_session(settings, work)
    typer.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))
