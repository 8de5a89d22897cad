"""The linked-identities section of /account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.identity import service
from app.identity.flow import Button, Providers
from app.identity.models import Identity


@dataclass(frozen=True)
class LinkedIdentity:
    identity: Identity
    label: str


async def account_section(request: Request, session: AsyncSession, user: User) -> dict[str, Any]:
    providers: Providers | None = getattr(request.app.state, "identity_providers", None)
    buttons = {b.name: b for b in providers.buttons()} if providers else {}
    linked = await service.identities_of(session, user_id=user.id)
    names = {i.provider for i in linked}
    connectable: list[Button] = [b for n, b in buttons.items() if n not in names]
    return {
        "identities": [
            LinkedIdentity(i, buttons[i.provider].label if i.provider in buttons else i.provider)
            for i in linked
        ],
        "connectable": connectable,
        "can_disconnect": await service.can_disconnect(session, user=user),
    }
