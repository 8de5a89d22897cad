"""Verified access tokens remembered by their exact text, for their remaining lifetime.

A JWT is immutable: the same string always carries the same signature and claims, so verifying
it a second time can only give the same answer until its `exp`. A hit is honoured only while
the token is unexpired (with the verifier's leeway); revocation, user status and scopes are
still checked on every request by the caller. Bounded (LRU), so a flood of distinct tokens
costs memory only up to `max_entries`. Failures are never cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.mcp.verification import TokenVerifier
from app.oauth.tokens import LEEWAY_SECONDS, AccessTokenClaims, InvalidAccessToken


class CachingTokenVerifier:
    def __init__(self, inner: TokenVerifier, *, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._max = max_entries
        self._verified: OrderedDict[str, AccessTokenClaims] = OrderedDict()

    async def verify(self, token: str) -> AccessTokenClaims:
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() > claims.expires_at + LEEWAY_SECONDS:
                del self._verified[token]
                raise InvalidAccessToken("the access token has expired")
            self._verified.move_to_end(token)
            return claims
        claims = await self._inner.verify(token)
        self._verified[token] = claims
        if len(self._verified) > self._max:
            self._verified.popitem(last=False)
        return claims
