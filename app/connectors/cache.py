"""A per-user cache of upstream read results.

Entries live until the end of the day in the deployment's time zone (CONNECTOR_CACHE_TZ), or
CONNECTOR_CACHE_TTL seconds when set. Keys always start with the user id and carry the
credential's generation, so users never share entries and a replaced credential never sees the
old one's results; deleting a credential drops the user's entries for that connector. With
REDIS_URL the cache is shared by every replica.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from app.kit.cache import BoundedCache
from app.kit.redis_url import redis_target

PREFIX = "gatehouse:upstream:"
MEMORY_ENTRIES = 10_000


class ReadCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def set(self, key: str, value: dict[str, Any]) -> None: ...
    async def drop(self, user_id: str, connector: str) -> None: ...
    async def aclose(self) -> None: ...


def seconds_until_end_of_day(zone: str, now: datetime | None = None) -> int:
    tz = ZoneInfo(zone)
    current = (now or datetime.now(tz)).astimezone(tz)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - current).total_seconds()))


class _Lifetime:
    def __init__(self, *, zone: str, fixed_ttl: int | None) -> None:
        self.zone = zone
        self.fixed_ttl = fixed_ttl

    def seconds(self) -> int:
        return self.fixed_ttl or seconds_until_end_of_day(self.zone)


class MemoryCache:
    def __init__(self, *, zone: str, fixed_ttl: int | None) -> None:
        self._lifetime = _Lifetime(zone=zone, fixed_ttl=fixed_ttl)
        # Stored as JSON text, so a caller can never mutate a cached result in place.
        self._entries: BoundedCache[str, str] = BoundedCache(max_entries=MEMORY_ENTRIES)

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._entries.get(key)
        if value is None:
            return None
        loaded: dict[str, Any] = json.loads(value)
        return loaded

    async def set(self, key: str, value: dict[str, Any]) -> None:
        self._entries.put(key, json.dumps(value), ttl=self._lifetime.seconds())

    async def drop(self, user_id: str, connector: str) -> None:
        prefix = f"{user_id}:{connector}:"
        for key in self._entries.keys():
            if key.startswith(prefix):
                self._entries.pop(key)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisCache:
    def __init__(self, url: str, *, zone: str, fixed_ttl: int | None) -> None:
        from redis.asyncio import Redis  # only when REDIS_URL is set: it costs ~0.2 s to load

        self._lifetime = _Lifetime(zone=zone, fixed_ttl=fixed_ttl)
        target = redis_target(url)
        self._redis = Redis.from_url(
            target.url,
            socket_connect_timeout=target.connect_timeout,
            socket_timeout=target.command_timeout,
        )

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(PREFIX + key)
        if raw is None:
            return None
        loaded: dict[str, Any] = json.loads(raw)
        return loaded

    async def set(self, key: str, value: dict[str, Any]) -> None:
        await self._redis.set(PREFIX + key, json.dumps(value), ex=self._lifetime.seconds())

    async def drop(self, user_id: str, connector: str) -> None:
        pattern = f"{PREFIX}{user_id}:{connector}:*"
        async for key in self._redis.scan_iter(match=pattern, count=500):
            await self._redis.delete(key)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_cache(*, redis_url: str | None, zone: str, fixed_ttl: int | None) -> ReadCache:
    if redis_url:
        return RedisCache(redis_url, zone=zone, fixed_ttl=fixed_ttl)
    return MemoryCache(zone=zone, fixed_ttl=fixed_ttl)
