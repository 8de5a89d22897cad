"""The `mcp` role's view of an external issuer's signing keys when that issuer is down or slow.

`RemoteTokenVerifier` asks an unreachable issuer at most once per interval (not once per request),
and tokens signed by keys it already holds keep being verified while the issuer fails or takes its
time: an issuer outage must not become an MCP outage. The issuer is a real local HTTP server.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.mcp.verifiers import RemoteTokenVerifier
from app.oauth.access_tokens import InvalidAccessToken
from tests.local_server import serve_asgi

AUDIENCE = "http://127.0.0.1:8000/mcp"
INTERVAL = 1.0  # the verifier's minimum time between two attempts to fetch the keys


class Issuer:
    """RFC 8414 metadata and a JWKS; counts requests; can fail (503) or hold its answers."""

    def __init__(self) -> None:
        self.keys = [ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)]
        self.requests = 0
        self.failing = False
        self.answering = threading.Event()  # cleared: requests wait until it is set again
        self.answering.set()
        self.arrived = threading.Event()
        self.url = ""

    async def _gate(self) -> JSONResponse | None:
        self.requests += 1
        self.arrived.set()
        await asyncio.to_thread(self.answering.wait, 10)
        return JSONResponse({"error": "unavailable"}, status_code=503) if self.failing else None

    async def metadata(self, request: Request) -> JSONResponse:  # noqa: ARG002 - a Starlette endpoint
        refused = await self._gate()
        return refused or JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"})

    async def jwks(self, request: Request) -> JSONResponse:  # noqa: ARG002 - a Starlette endpoint
        refused = await self._gate()
        return refused or JSONResponse(KeySet(self.keys).as_dict(private=False))

    def token(self, kid: str = "k1") -> str:
        key = next(k for k in self.keys if k.kid == kid)
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "client_id": "client-1",
            "scope": "mcp",
            "gid": str(uuid.uuid4()),
            "jti": secrets.token_hex(8),
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, key)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", issuer.metadata),
            Route("/jwks.json", issuer.jwks),
        ]
    )
    with serve_asgi(app) as url:
        issuer.url = url
        yield issuer
        issuer.answering.set()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def verifier(issuer: Issuer, http: httpx.AsyncClient, *, max_age: float) -> RemoteTokenVerifier:
    return RemoteTokenVerifier(
        issuer=issuer.url, audience=AUDIENCE, http=http, min_interval=INTERVAL, max_age=max_age
    )


async def test_an_unreachable_issuer_is_asked_once_per_interval_not_once_per_request(
    issuer: Issuer, http: httpx.AsyncClient
) -> None:
    issuer.failing = True
    remote = verifier(issuer, http, max_age=300)
    token = issuer.token()
    for _ in range(20):
        with pytest.raises(InvalidAccessToken, match="the issuer's keys are not available"):
            await remote.verify(token)
    assert issuer.requests == 1  # the metadata request of the one attempt
    await asyncio.sleep(INTERVAL + 0.1)
    issuer.failing = False
    claims = await remote.verify(token)
    assert claims.audience == AUDIENCE
    assert issuer.requests == 3  # the next attempt: metadata and keys


async def test_known_keys_keep_working_while_the_issuer_is_down(
    issuer: Issuer, http: httpx.AsyncClient
) -> None:
    remote = verifier(issuer, http, max_age=0)  # every request would like a fresh key set
    token = issuer.token()
    await remote.verify(token)
    assert issuer.requests == 2
    issuer.failing = True
    await asyncio.sleep(INTERVAL + 0.1)
    for _ in range(20):
        claims = await remote.verify(token)
        assert claims.client_id == "client-1"
    assert issuer.requests == 3  # one failed attempt, then the cached keys until the interval


async def test_known_keys_do_not_wait_for_a_slow_issuer(
    issuer: Issuer, http: httpx.AsyncClient
) -> None:
    remote = verifier(issuer, http, max_age=0)
    token = issuer.token()
    await remote.verify(token)
    await asyncio.sleep(INTERVAL + 0.1)
    issuer.answering.clear()
    issuer.arrived.clear()
    rereading = asyncio.create_task(remote.verify(token))
    assert await asyncio.to_thread(issuer.arrived.wait, 5), "the key set was not re-read"
    # The issuer is holding that request; tokens under known keys are answered meanwhile.
    others = await asyncio.wait_for(
        asyncio.gather(*(remote.verify(token) for _ in range(5))), timeout=3
    )
    assert all(claims.client_id == "client-1" for claims in others)
    assert not rereading.done()
    issuer.answering.set()
    assert (await rereading).client_id == "client-1"


async def test_a_token_under_a_new_key_fetches_the_keys_again(
    issuer: Issuer, http: httpx.AsyncClient
) -> None:
    remote = verifier(issuer, http, max_age=300)
    await remote.verify(issuer.token())
    issuer.keys.append(ECKey.generate_key("P-256", parameters={"kid": "k2"}, private=True))
    await asyncio.sleep(INTERVAL + 0.1)
    claims = await remote.verify(issuer.token("k2"))
    assert claims.client_id == "client-1"
    assert issuer.requests == 4
