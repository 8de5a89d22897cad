"""The person's connected apps (/account/apps): what they approved, and taking it back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.consent import forget_consent
from app.oauth.models import OAuthGrant
from app.oauth.revocation import revoke_grant


@dataclass(frozen=True)
class ConnectedApp:
    client_pk: uuid.UUID
    name: str
    domain: str | None
    scopes: list[str]
    approved: datetime
    last_used: datetime | None


async def connected_apps(session: AsyncSession, *, user_id: uuid.UUID) -> list[ConnectedApp]:
    stmt = (
        select(OAuthGrant)
        .where(OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None))
        .order_by(OAuthGrant.created_at)
    )
    by_client: dict[uuid.UUID, ConnectedApp] = {}
    for grant in (await session.execute(stmt)).scalars():
        client = grant.client
        seen = by_client.get(client.id)
        scopes = sorted(set(grant.scope_list) | set(seen.scopes if seen else []))
        last_used = max(
            (t for t in (grant.last_used_at, seen.last_used if seen else None) if t), default=None
        )
        by_client[client.id] = ConnectedApp(
            client_pk=client.id,
            name=client.client_name or client.client_id,
            domain=urlsplit(client.client_id).hostname if client.kind == "cimd" else None,
            scopes=scopes,
            approved=seen.approved if seen else grant.created_at,
            last_used=last_used,
        )
    return sorted(by_client.values(), key=lambda app: app.approved, reverse=True)


async def revoke_app(
    session: AsyncSession, *, user_id: uuid.UUID, client_pk: uuid.UUID, ip: str | None
) -> int:
    """Revoke every grant the user gave this client, and forget the remembered consent."""
    grants = (
        await session.execute(
            select(OAuthGrant.id).where(
                OAuthGrant.user_id == user_id,
                OAuthGrant.client_pk == client_pk,
                OAuthGrant.revoked_at.is_(None),
            )
        )
    ).scalars()
    count = 0
    for grant_id in list(grants):
        count += await revoke_grant(
            session, grant_id, reason="user_revoked", ip=ip, user_id=user_id
        )
    await forget_consent(session, user_id=user_id, client_pk=client_pk)
    return count
