"""The identity parts of the account pages: the sign-in buttons and the linked-identities
section of /account. Imported by the auth pages, so the template globals are always there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.identity import service
from app.identity.flow import Button, Providers
from app.identity.models import Identity
from app.kit.web import get_settings, templates
from app.state import services_of


@dataclass(frozen=True)
class LinkedIdentity:
    identity: Identity
    label: str


def _providers(request: Request) -> Providers | None:
    """The configured providers, in the roles that serve sign-in pages (None elsewhere)."""
    authorization = services_of(request.app).authorization_services
    return authorization.identity_providers if authorization is not None else None


async def account_section(request: Request, session: AsyncSession, user: User) -> dict[str, Any]:
    providers = _providers(request)
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


def sign_in_buttons(request: Request) -> list[Button]:
    """For the sign-in and sign-up pages (a template global: those routes stay as they are)."""
    providers = _providers(request)
    return providers.buttons() if providers else []


def password_signin(request: Request) -> bool:
    return get_settings(request).password_signin


templates.env.globals["identity_buttons"] = sign_in_buttons
templates.env.globals["password_signin_enabled"] = password_signin
