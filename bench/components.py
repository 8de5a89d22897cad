"""The cost of single pieces of the /mcp path, each timed alone (min of many repeats).

Robust on a shared machine where end-to-end numbers swing: the minimum of many short repeats
is the cost when nothing else interfered (CPU time of this process, not wall time).

    .venv/bin/python bench/components.py
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey, KeySet  # noqa: E402


async def best(fn: Callable[[], Awaitable[Any]], n: int = 20, repeats: int = 200) -> float:
    """Microseconds per call: the best of `repeats` runs of `n` calls."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            await fn()
        times.append((time.process_time() - start) / n * 1e6)
    return min(times)


async def main() -> None:
    import anyio.to_thread
    import uvicorn.logging

    from app.mcp.verifiers import CachingTokenVerifier
    from app.oauth.access_tokens import verify_access_token

    key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)
    keyset = KeySet([ECKey.import_key(key.as_dict(private=False))])
    now = int(time.time())
    token = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": "k1"},
        {
            "iss": "http://i",
            "aud": "http://i/mcp",
            "sub": "00000000-0000-0000-0000-000000000001",
            "client_id": "c",
            "scope": "mcp",
            "jti": "j",
            "iat": now,
            "exp": now + 3600,
            "gid": "00000000-0000-0000-0000-000000000002",
        },
        key,
    )

    class Local:
        async def verify(self, t: str) -> Any:
            return verify_access_token(t, keyset, issuer="http://i", audience="http://i/mcp")

    cached = CachingTokenVerifier(Local())
    await cached.verify(token)

    def guard() -> None:
        return None

    async def hop() -> None:
        await anyio.to_thread.run_sync(guard)

    async def direct() -> None:
        guard()

    access = logging.getLogger("bench.access")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(
        uvicorn.logging.AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    )
    access.addHandler(handler)
    access.propagate = False
    access.setLevel(logging.INFO)

    async def log_line() -> None:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "POST", "/mcp", "1.1", 200)
        handler.stream.seek(0)
        handler.stream.truncate()

    async def full_verify() -> None:
        await Local().verify(token)

    rows = [
        ("ES256 JWT verification + claim checks (every request before)", full_verify),
        ("the same token from CachingTokenVerifier (exp checked)", lambda: cached.verify(token)),
        ("sync dependency via the threadpool (the old Host/Origin guard)", hop),
        ("the same check called directly", direct),
        ("one uvicorn access-log line (formatted, written)", log_line),
    ]
    for label, fn in rows:
        print(f"{await best(fn):9.1f} µs  {label}")


if __name__ == "__main__":
    asyncio.run(main())
