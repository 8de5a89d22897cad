"""Which app a person signs in for: "Sign in to continue to <client name>".

The authorization server knows its clients; accounts must not import it (docs/ARCHITECTURE.md),
so it hands in a `ClientNames` (app/main.py puts one on `AuthorizationServices`).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.state import Services


class ClientNames(Protocol):
    async def display_name(self, session: AsyncSession, next_path: str) -> str | None:
        """The name of the client a pending `/authorize?…` in `next` is for, if known."""
        ...


async def continue_to(services: Services, session: AsyncSession, next_path: str) -> str | None:
    authorization = services.authorization_services
    if authorization is None or authorization.client_names is None:
        return None
    if not next_path.startswith("/authorize?"):
        return None
    return await authorization.client_names.display_name(session, next_path)
