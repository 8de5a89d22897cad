"""Who users and clients are, cached briefly (names and emails change rarely)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import User
from app.kit.cache import BoundedCache
from app.mcp.context import ClientInfo, UserInfo
from app.oauth.models import OAuthClient

DIRECTORY_TTL = 60.0
DIRECTORY_SIZE = 10_000


class Directory:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._users: BoundedCache[uuid.UUID, UserInfo | None] = BoundedCache(
            max_entries=DIRECTORY_SIZE, ttl=DIRECTORY_TTL
        )
        self._clients: BoundedCache[str, ClientInfo | None] = BoundedCache(
            max_entries=DIRECTORY_SIZE, ttl=DIRECTORY_TTL
        )

    async def user(self, user_id: uuid.UUID) -> UserInfo | None:
        hit = self._users.lookup(user_id)
        if hit is not None:
            return hit.value
        async with self._sessionmaker() as session:
            row = await session.get(User, user_id)
        info = UserInfo(row.id, row.email, row.name) if row else None
        self._users.put(user_id, info)
        return info

    async def client(self, client_id: str) -> ClientInfo | None:
        hit = self._clients.lookup(client_id)
        if hit is not None:
            return hit.value
        async with self._sessionmaker() as session:
            row = (
                await session.execute(select(OAuthClient).where(OAuthClient.client_id == client_id))
            ).scalar_one_or_none()
        info = ClientInfo(row.client_id, row.client_name or row.client_id) if row else None
        self._clients.put(client_id, info)
        return info
