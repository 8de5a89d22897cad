"""The display name of the client a sign-in is for (app/auth/continue_to.py's `ClientNames`).

Bounded for an unauthenticated caller: one indexed lookup, or the metadata document /authorize
already fetched (the cache only; never a new fetch).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.clients import find_client
from app.oauth.registration import clean_display_name

MAX_CLIENT_ID = 2048


class AuthorizeClientNames:
    def __init__(self, fetcher: CimdFetcher) -> None:
        self._fetcher = fetcher

    async def display_name(self, session: AsyncSession, next_path: str) -> str | None:
        parts = urlsplit(next_path)
        client_ids = parse_qs(parts.query).get("client_id", [])
        if parts.path != "/authorize" or len(client_ids) != 1:
            return None
        client_id = client_ids[0]
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            return None
        client = await find_client(session, client_id)
        if client is not None and client.revoked_at is None:
            return client.client_name or None
        document = self._fetcher.cached(client_id)
        return clean_display_name(document.client_name) or None if document else None
