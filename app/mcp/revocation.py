"""Whether a token's grant is still unrevoked and its user enabled, known within 5 seconds.

Either a feed polled from the shared database every REVOCATION_POLL seconds
(`RevocationFeed`) or, in the `mcp` role with introspection credentials, the issuer's answer
about each grant (`IntrospectionCheck`), asked again before it is REVOCATION_MAX_AGE old; an
answer older than that is never trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import User
from app.db import utcnow
from app.kit.cache import BoundedCache
from app.mcp.verifiers import Issuer
from app.oauth.access_tokens import AccessTokenClaims, InvalidAccessToken
from app.oauth.models import OAuthGrant

logger = logging.getLogger("gatehouse.mcp")

REVOCATION_POLL = 2.0
REVOCATION_MAX_AGE = 4.5
INTROSPECTION_REFRESH_AFTER = 2.0
INTROSPECTION_RETRY_AFTER_FAILURE = 1.0
INTROSPECTION_CACHE_SIZE = 10_000
INTROSPECTION_CONCURRENCY = 16


class RevocationCheck(Protocol):
    async def allows(self, token: str, claims: AccessTokenClaims) -> bool:
        """Whether the token's grant is unrevoked and its user enabled, as of 5 s ago at most;
        raises RevocationUnknown when that cannot be told."""
        ...


class RevocationUnknown(Exception):
    """Whether a token was revoked cannot be told now (the issuer is unreachable)."""


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

    async def allows(self, _token: str, claims: AccessTokenClaims) -> bool:
        try:
            user_id, grant_id = claims.ids
        except ValueError:
            return False
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


class IntrospectionCheck:
    """Revocation learned from the issuer's /introspect (RFC 7662), for the `mcp` role.

    What the issuer can say that we cannot check locally (signature, iss, aud and exp are) is
    whether the grant is revoked or its user disabled, so its answer is remembered per grant:
    any number of tokens of one grant cost one question. An answer is trusted for
    REVOCATION_MAX_AGE seconds from the moment the question was sent; once it is
    INTROSPECTION_REFRESH_AFTER old, the next request still uses it but asks again in the
    background, so a grant in steady use waits for the issuer once, not every few seconds.
    Concurrent requests share one question, and at most INTROSPECTION_CONCURRENCY are open at
    once. A "no" only ever applies to the token it was about (another token of the grant is
    asked about itself), so a token that expired at the issuer cannot lock out its successor.
    When the issuer cannot be reached and no answer is young enough: RevocationUnknown, never an
    answer older than the bound.
    """

    def __init__(
        self,
        *,
        issuer: str,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        fetch_from: str = "",
        refresh_after: float = INTROSPECTION_REFRESH_AFTER,
        max_age: float = REVOCATION_MAX_AGE,
    ) -> None:
        self._issuer = Issuer(issuer=issuer, http=http, fetch_from=fetch_from)
        self._http = http
        # RFC 6749 §2.3.1: client_secret_basic encodes both halves before Base64.
        self._auth = httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))
        self._refresh_after = refresh_after
        self._max_age = max_age
        self._endpoint = ""
        self._answers: BoundedCache[str, Answer] = BoundedCache(  # by grant id
            max_entries=INTROSPECTION_CACHE_SIZE
        )
        self._asking: dict[str, asyncio.Task[Answer]] = {}
        self._open = asyncio.Semaphore(INTROSPECTION_CONCURRENCY)
        self._failed_at = -math.inf

    async def allows(self, token: str, claims: AccessTokenClaims) -> bool:
        answer = self._answers.get(claims.grant_id)
        if answer is not None and answer.applies_to(claims.token_id):
            age = time.monotonic() - answer.asked_at
            if age < self._max_age:
                if age >= self._refresh_after and claims.grant_id not in self._asking:
                    self._ask(token, claims)
                return answer.active
        answer = await asyncio.shield(self._ask(token, claims))
        if not answer.applies_to(claims.token_id):
            # The shared question was about another token of the grant, and the answer is no.
            answer = await asyncio.shield(self._ask(token, claims))
        return answer.active and answer.applies_to(claims.token_id)

    def _ask(self, token: str, claims: AccessTokenClaims) -> asyncio.Task[Answer]:
        task = self._asking.get(claims.grant_id)
        if task is None:
            task = asyncio.create_task(self._introspect(token, claims))
            self._asking[claims.grant_id] = task
            task.add_done_callback(lambda _: self._asking.pop(claims.grant_id, None))
            # A question nobody waits for any more (a background one, or its client left):
            # its failure only leaves the older answer to age out.
            task.add_done_callback(_consume_failure)
        return task

    async def _introspect(self, token: str, claims: AccessTokenClaims) -> Answer:
        if time.monotonic() - self._failed_at < INTROSPECTION_RETRY_AFTER_FAILURE:
            raise RevocationUnknown("the authorization server could not be reached just now")
        async with self._open:
            asked_at = time.monotonic()
            try:
                body = await self._post(token)
            except httpx.PoolTimeout as exc:  # our own queue, not the issuer's health
                raise RevocationUnknown("too many questions to the authorization server") from exc
            except (httpx.HTTPError, *UNUSABLE_ANSWER) as exc:
                self._failed_at = time.monotonic()
                logger.warning("could not introspect a token at the issuer: %s", type(exc).__name__)
                raise RevocationUnknown("the authorization server could not be reached") from exc
        # Active only if the issuer says so about this very token (RFC 7662 §2.2).
        active = (
            body.get("active") is True
            and body.get("jti") == claims.token_id
            and body.get("gid") == claims.grant_id
        )
        answer = Answer(asked_at, active, claims.token_id)
        self._answers.put(claims.grant_id, answer)
        return answer

    async def _post(self, token: str) -> dict[str, Any]:
        if not self._endpoint:
            self._endpoint = await self._issuer.endpoint("introspection_endpoint", credentials=True)
        response = await self._http.post(
            self._endpoint,
            data={"token": token, "token_type_hint": "access_token"},
            auth=self._auth,
        )
        if response.status_code == 401:
            logger.error(
                "the issuer refused this resource server's introspection credentials: check "
                "AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET"
            )
        response.raise_for_status()  # 3xx included: credentials never follow a redirect
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("the introspection response is not a JSON object")
        return body

    async def close(self) -> None:
        for task in list(self._asking.values()):
            task.cancel()
        await asyncio.gather(*self._asking.values(), return_exceptions=True)

    async def check_credentials(self) -> None:
        """At start-up: refuse to run with credentials the issuer rejects; an issuer that is
        not up yet is only worth a warning (tokens are checked when they arrive)."""
        try:
            body = await self._post("probe")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 401:
                raise RuntimeError(
                    "the issuer refused AUTH_INTROSPECTION_CLIENT_ID/"
                    "AUTH_INTROSPECTION_CLIENT_SECRET: run `gatehouse clients "
                    "add-resource-server` on the auth service and set the two values it prints"
                ) from None
            logger.warning(
                "the issuer's introspection endpoint answered %s", exc.response.status_code
            )
        except (httpx.HTTPError, *UNUSABLE_ANSWER) as exc:
            logger.warning(
                "the issuer's introspection endpoint could not be reached at start-up: %s",
                type(exc).__name__,
            )
        else:
            if body != {"active": False}:
                logger.warning("the issuer's introspection endpoint gave an unexpected answer")


@dataclass(frozen=True, slots=True)
class Answer:
    asked_at: float
    active: bool
    token_id: str  # the token the question was about

    def applies_to(self, token_id: str) -> bool:
        """A yes holds for every token of the grant; a no only for the token it was about."""
        return self.active or self.token_id == token_id


# What a malformed metadata document or introspection answer raises on the way.
UNUSABLE_ANSWER = (ValueError, KeyError, TypeError, AttributeError, InvalidAccessToken)


def _consume_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
