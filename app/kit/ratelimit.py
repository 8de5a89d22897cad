"""Rate limits (the `limits` package): in memory by default, in Redis when REDIS_URL is set."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from app.kit.redis_url import redis_target

REDIS_PORT = 6379  # Redis's port when REDIS_URL names none


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class RateLimits:
    def __init__(self, redis_url: str | None) -> None:
        self.storage = _redis_storage(redis_url) if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def aclose(self) -> None:
        """Close Redis connections (the limits package has no public close; reach its client)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    @staticmethod
    def rule(text: str) -> RateLimitItem:
        return parse(text)

    async def check(self, rule: RateLimitItem, *key: str) -> Verdict:
        """Is another attempt allowed now? Does not count one."""
        if await self.limiter.test(rule, *key):
            return Verdict(True)
        stats = await self.limiter.get_window_stats(rule, *key)
        return Verdict(False, max(1, int(stats.reset_time - time.time()) + 1))

    async def hit(self, rule: RateLimitItem, *key: str) -> Verdict:
        """Count an attempt; refused when the limit was already reached.

        Atomic (a lock in memory, a Lua script in Redis): call it *before* the work it guards,
        so concurrent attempts cannot all pass a check made before any of them is counted.
        """
        if await self.limiter.hit(rule, *key):
            return Verdict(True)
        stats = await self.limiter.get_window_stats(rule, *key)
        return Verdict(False, max(1, int(stats.reset_time - time.time()) + 1))

    async def remaining(self, rule: RateLimitItem, *key: str) -> int:
        """How many more attempts the window allows now."""
        return int((await self.limiter.get_window_stats(rule, *key)).remaining)

    async def clear(self, rule: RateLimitItem, *key: str) -> None:
        await self.limiter.clear(rule, *key)


def _redis_storage(redis_url: str) -> Storage:
    """The limits package's Redis storage (through coredis), every call bounded in time.

    Redis errors, a timeout included, surface as limits.errors.StorageError, which
    app/failures.py answers with 503 + Retry-After (the limit cannot be counted, so the work is
    not done).
    """
    from coredis.exceptions import ConnectionError as RedisConnectionError  # only with REDIS_URL
    from coredis.retry import ConstantRetryPolicy

    target = redis_target(redis_url)
    url = _with_port(target.url)
    url = ("async+redis+" if url.startswith("unix://") else "async+") + url
    options: dict[str, Any] = {
        "connect_timeout": target.connect_timeout,
        "stream_timeout": target.command_timeout,
        # coredis retries timeouts twice by default, which would triple the wait on a Redis that
        # hangs; a refused or dropped connection is still retried (a restarted Redis).
        "retry_policy": ConstantRetryPolicy((RedisConnectionError,), 2, 0.01),
    }
    try:
        made = storage_from_string(url, wrap_exceptions=True, **options)
    except ConfigurationError:  # its message holds the URL, password and all
        raise ValueError("REDIS_URL cannot be opened by the rate limits") from None
    if not isinstance(made, Storage):
        raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return made


def _with_port(url: str) -> str:
    """The URL with Redis's own port when it names none: the clients take 6379 then, and
    `limits` refuses a host without a port."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or parts.port is not None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{REDIS_PORT}"))
