"""Verified access tokens remembered by their exact text, for their remaining lifetime.

A JWT is immutable: the same string always carries the same signature and claims, so verifying
it a second time can only give the same answer until its `exp`. A hit is honoured only while
the token is unexpired (with the verifier's leeway); revocation, user status and scopes are
still checked on every request by the caller. An entry is re-verified after `max_age` seconds, so
a token whose signing key was withdrawn stops being accepted within that bound. Bounded (LRU), so
a flood of distinct tokens costs memory only up to `max_entries`. Failures are never cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.mcp.verification import TokenVerifier
from app.oauth.access_tokens import LEEWAY_SECONDS, AccessTokenClaims, InvalidAccessToken


class CachingTokenVerifier:
    def __init__(
        self, inner: TokenVerifier, *, max_entries: int = 10_000, max_age: float = 300.0
    ) -> None:
        self._inner = inner
        self._max = max_entries
        self._max_age = max_age
        self._verified: OrderedDict[str, tuple[float, AccessTokenClaims]] = OrderedDict()

    async def verify(self, token: str) -> AccessTokenClaims:
        hit = self._verified.get(token)
        if hit is not None:
            verified_at, claims = hit
            if time.time() > claims.expires_at + LEEWAY_SECONDS:
                del self._verified[token]
                raise InvalidAccessToken("the access token has expired")
            if time.monotonic() - verified_at < self._max_age:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = await self._inner.verify(token)
        self._verified[token] = (time.monotonic(), claims)
        if len(self._verified) > self._max:
            self._verified.popitem(last=False)
        return claims
