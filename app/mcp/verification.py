"""Everything the resource server needs to trust a bearer token without a query per request.

- signature and claims: checked locally against the issuer's keys (our database's, or the remote
  issuer's JWKS in the split-out `mcp` role), cached and refreshed on an unknown `kid`;
- revoked grants and disabled users: a feed polled every REVOCATION_POLL seconds, so a change is
  seen within 5 seconds; if the feed is ever older than REVOCATION_MAX_AGE the request waits for
  a fresh poll rather than trust stale data;
- who the user and client are: a small cache with a short lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import httpx
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import User
from app.db import utcnow
from app.mcp.context import ClientInfo, UserInfo
from app.oauth.models import OAuthClient, OAuthGrant
from app.oauth.tokens import (
    AccessTokenClaims,
    InvalidAccessToken,
    SigningKeys,
    UnknownKeyId,
    verify_access_token,
)

logger = logging.getLogger("gatehouse.mcp")

REVOCATION_POLL = 2.0
REVOCATION_MAX_AGE = 4.5
DIRECTORY_TTL = 60.0
DIRECTORY_SIZE = 10_000
JWKS_REFRESH_MIN_INTERVAL = 10.0
JWKS_MAX_AGE = 300.0


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> AccessTokenClaims: ...


class LocalTokenVerifier:
    """Tokens we issued ourselves: keys from our own database (role `all`)."""

    def __init__(self, keys: SigningKeys, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> AccessTokenClaims:
        return await self._keys.verify(token, issuer=self._issuer, audience=self._audience)


class RemoteTokenVerifier:
    """Tokens of an external issuer (role `mcp`): its metadata and JWKS, fetched and cached."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient,
        fetch_from: str = "",
        min_interval: float = JWKS_REFRESH_MIN_INTERVAL,
        max_age: float = JWKS_MAX_AGE,
    ) -> None:
        self._issuer = issuer
        # The same issuer reached by another base URL (a private address inside a cluster).
        self._base = fetch_from or issuer
        self._audience = audience
        self._http = http
        self._min_interval = min_interval
        self._max_age = max_age
        self._keyset: KeySet | None = None
        self._fetched_at = -math.inf  # the last successful fetch
        self._attempted_at = -math.inf  # the last attempt, successful or not
        self._lock = asyncio.Lock()

    async def _jwks_uri(self) -> str:
        response = await self._http.get(f"{self._base}/.well-known/oauth-authorization-server")
        response.raise_for_status()
        metadata = response.json()
        # RFC 8414 §3.3: the issuer in the metadata MUST be identical to the one we trust.
        if metadata.get("issuer") != self._issuer:
            raise InvalidAccessToken("the issuer's metadata names another issuer")
        jwks_uri = str(metadata["jwks_uri"])
        if self._base != self._issuer and jwks_uri.startswith(self._issuer + "/"):
            jwks_uri = self._base + jwks_uri[len(self._issuer) :]
        return jwks_uri

    async def _refresh(self) -> KeySet:
        """Fetch the key set, at most once per `min_interval` whatever the outcome: an issuer
        that is down is not asked again by every request that arrives meanwhile."""
        async with self._lock:
            if time.monotonic() - self._attempted_at < self._min_interval:
                if self._keyset is None:
                    raise InvalidAccessToken("the issuer's keys are not available")
                return self._keyset
            self._attempted_at = time.monotonic()
            try:
                response = await self._http.get(await self._jwks_uri())
                response.raise_for_status()
                keys: list[Any] = [ECKey.import_key(jwk) for jwk in response.json()["keys"]]
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                logger.warning("could not fetch the issuer's JWKS: %s", type(exc).__name__)
                if self._keyset is None:
                    raise InvalidAccessToken("the issuer's keys are not available") from exc
                return self._keyset
            self._keyset = KeySet(keys)
            self._fetched_at = time.monotonic()
            return self._keyset

    async def verify(self, token: str) -> AccessTokenClaims:
        # Re-read the key set now and then even when every kid is known, so a key the issuer
        # withdraws (say, after a compromise) stops being trusted without a restart. While one
        # request is re-reading it, the others use the keys in hand: a slow or unreachable
        # issuer must not hold up tokens signed by keys we already have.
        keyset = self._keyset
        if keyset is None or (
            time.monotonic() - self._fetched_at > self._max_age and not self._lock.locked()
        ):
            keyset = await self._refresh()
        try:
            return verify_access_token(token, keyset, issuer=self._issuer, audience=self._audience)
        except UnknownKeyId:
            # A new key after rotation: refresh once (rate-limited) and try again.
            keyset = await self._refresh()
            return verify_access_token(token, keyset, issuer=self._issuer, audience=self._audience)


class RevocationFeed:
    """Revoked grants and disabled users, polled from the shared database."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, access_token_ttl: int
    ) -> None:
        self._sessionmaker = sessionmaker
        self._window = timedelta(seconds=access_token_ttl + 120)
        self._revoked: frozenset[uuid.UUID] = frozenset()
        self._disabled: frozenset[uuid.UUID] = frozenset()
        self._polled_at = float("-inf")
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def poll(self) -> None:
        async with self._lock:
            started = time.monotonic()
            async with self._sessionmaker() as session:
                # Every grant revoked recently enough that one of its tokens could still be
                # unexpired: robust to clock skew between replicas, no watermark to lose.
                revoked = await session.execute(
                    select(OAuthGrant.id).where(OAuthGrant.revoked_at > utcnow() - self._window)
                )
                disabled = await session.execute(
                    select(User.id).where(User.disabled_at.is_not(None))
                )
                self._revoked = frozenset(revoked.scalars())
                self._disabled = frozenset(disabled.scalars())
            self._polled_at = started

    async def _ensure_fresh(self) -> None:
        if time.monotonic() - self._polled_at > REVOCATION_MAX_AGE:
            await self.poll()

    async def allows(self, *, grant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        await self._ensure_fresh()
        return grant_id not in self._revoked and user_id not in self._disabled

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.poll()
            await asyncio.sleep(REVOCATION_POLL)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Directory:
    """Who users and clients are, cached briefly (names and emails change rarely)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._users: OrderedDict[uuid.UUID, tuple[float, UserInfo | None]] = OrderedDict()
        self._clients: OrderedDict[str, tuple[float, ClientInfo | None]] = OrderedDict()

    async def user(self, user_id: uuid.UUID) -> UserInfo | None:
        hit = self._users.get(user_id)
        if hit and time.monotonic() - hit[0] < DIRECTORY_TTL:
            return hit[1]
        async with self._sessionmaker() as session:
            row = await session.get(User, user_id)
        info = UserInfo(row.id, row.email, row.name) if row else None
        _put(self._users, user_id, info)
        return info

    async def client(self, client_id: str) -> ClientInfo | None:
        hit = self._clients.get(client_id)
        if hit and time.monotonic() - hit[0] < DIRECTORY_TTL:
            return hit[1]
        async with self._sessionmaker() as session:
            row = (
                await session.execute(select(OAuthClient).where(OAuthClient.client_id == client_id))
            ).scalar_one_or_none()
        info = ClientInfo(row.client_id, row.client_name or row.client_id) if row else None
        _put(self._clients, client_id, info)
        return info


K = TypeVar("K")
V = TypeVar("V")


def _put(cache: OrderedDict[K, tuple[float, V]], key: K, value: V) -> None:
    cache[key] = (time.monotonic(), value)
    cache.move_to_end(key)
    while len(cache) > DIRECTORY_SIZE:
        cache.popitem(last=False)
