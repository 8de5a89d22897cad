"""The operator's view of the authorization server: what the `gatehouse` CLI lists and revokes.

The CLI holds no SQL; these are its queries and changes, one function per command. The rest is
re-exported from the modules that own it, so the CLI imports only this module from app/oauth.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.db import utcnow
from app.oauth import user_grants
from app.oauth.clients import find_client
from app.oauth.models import OAuthClient, OAuthGrant
from app.oauth.registration import RESOURCE_SERVER_KIND, register_resource_server
from app.oauth.revocation import revoke_grant
from app.oauth.signing_keys import publish_window, rewrap_signing_keys, rotate_signing_key

__all__ = [
    "active_resource_server_ids",
    "list_clients",
    "list_grants",
    "publish_window",
    "register_resource_server",
    "revoke_client",
    "revoke_grant_by_admin",
    "revoke_user_grants",
    "rewrap_signing_keys",
    "rotate_signing_key",
]


async def list_clients(session: AsyncSession) -> list[OAuthClient]:
    """Every client, oldest first (registered, client-metadata-document and resource servers)."""
    stmt = select(OAuthClient).order_by(OAuthClient.created_at)
    return list((await session.execute(stmt)).scalars())


async def active_resource_server_ids(session: AsyncSession) -> list[str]:
    """The client_ids of the resource-server credentials that still work."""
    stmt = select(OAuthClient.client_id).where(
        OAuthClient.kind == RESOURCE_SERVER_KIND, OAuthClient.revoked_at.is_(None)
    )
    return list((await session.execute(stmt)).scalars())


async def revoke_client(session: AsyncSession, client_id: str) -> int | None:
    """Block a client and revoke its grants; how many grants, or None for no such client."""
    client = await find_client(session, client_id)
    if client is None:
        return None
    client.revoked_at = client.revoked_at or utcnow()
    grant_ids = (
        await session.execute(
            select(OAuthGrant.id).where(
                OAuthGrant.client_pk == client.id, OAuthGrant.revoked_at.is_(None)
            )
        )
    ).scalars()
    count = 0
    for grant_id in list(grant_ids):
        count += await revoke_grant(session, grant_id, reason="client_revoked")
    return count


async def list_grants(
    session: AsyncSession, *, user_email: str | None, include_revoked: bool
) -> list[OAuthGrant]:
    """Grants oldest first, optionally only one user's (by email, any case) or only active."""
    stmt = select(OAuthGrant).order_by(OAuthGrant.created_at)
    if user_email:
        stmt = stmt.join(User).where(func.lower(User.email) == user_email.strip().lower())
    if not include_revoked:
        stmt = stmt.where(OAuthGrant.revoked_at.is_(None))
    return list((await session.execute(stmt)).scalars())


async def revoke_grant_by_admin(session: AsyncSession, grant_id: uuid.UUID) -> bool:
    return bool(await revoke_grant(session, grant_id, reason="admin_revoked"))


async def revoke_user_grants(session: AsyncSession, user_id: uuid.UUID) -> int:
    """`users disable`: end every grant of the account and forget its consents, so tokens
    issued before stay refused after `users enable` and each client must be approved anew."""
    return await user_grants.revoke_user_grants(session, user_id=user_id, reason="user_disabled")
