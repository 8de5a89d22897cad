"""`IntrospectionCheck` against an issuer that answers exactly what each test needs.

The issuer is a real local HTTP server (RFC 8414 metadata and an RFC 7662 endpoint that checks
the Basic credentials); the end-to-end behaviour against Gatehouse's own `auth` role is in
test_introspection_revocation.py. Pinned here: one question per grant, not per token; a "no"
about one token never locks out another token of its grant; credentials only go to the issuer
itself; at most INTROSPECTION_CONCURRENCY questions are open at once; any unusable answer is
RevocationUnknown, never a yes.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.mcp.revocation import (
    INTROSPECTION_CONCURRENCY,
    IntrospectionCheck,
    RevocationUnknown,
)
from app.oauth.access_tokens import AccessTokenClaims
from tests.local_server import serve_asgi

CLIENT_ID = "gh_rs_test"
SECRET = "gh_cs_test-secret"


class Issuer:
    """Answers /introspect from `answers` (token → JSON body), or with `reply` when set."""

    def __init__(self) -> None:
        self.url = ""
        self.introspection_endpoint = ""
        self.answers: dict[str, Any] = {}
        self.reply: Callable[[], Response] | None = None
        self.questions: list[str] = []
        self.open = 0
        self.most_open = 0
        self.hold = threading.Event()
        self.hold.set()

    async def metadata(self, request: Request) -> JSONResponse:  # noqa: ARG002 - a Starlette endpoint
        endpoint = self.introspection_endpoint or f"{self.url}/introspect"
        return JSONResponse({"issuer": self.url, "introspection_endpoint": endpoint})

    async def introspect(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = str((await request.form())["token"])
        self.questions.append(token)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await asyncio.to_thread(self.hold.wait, 10)
        finally:
            self.open -= 1
        if self.reply is not None:
            return self.reply()
        return JSONResponse(self.answers.get(token, {"active": False}))


def app_of(issuer: Issuer) -> Starlette:
    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", issuer.metadata),
            Route("/introspect", issuer.introspect, methods=["POST"]),
        ]
    )


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    with serve_asgi(app_of(issuer)) as url:
        issuer.url = url
        yield issuer
        issuer.hold.set()


@pytest.fixture
async def check(issuer: Issuer) -> AsyncIterator[IntrospectionCheck]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        check = IntrospectionCheck(
            issuer=issuer.url, http=http, client_id=CLIENT_ID, client_secret=SECRET
        )
        yield check
        await check.close()


def claims(grant_id: str, token_id: str) -> AccessTokenClaims:
    return AccessTokenClaims(
        subject=str(uuid.uuid4()),
        client_id="gh_c_x",
        scopes=("mcp",),
        grant_id=grant_id,
        token_id=token_id,
        audience="http://127.0.0.1:8000/mcp",
        issued_at=0,
        expires_at=2**40,
    )


def active(c: AccessTokenClaims) -> dict[str, Any]:
    return {"active": True, "jti": c.token_id, "gid": c.grant_id}


async def test_tokens_of_one_grant_share_one_question(
    issuer: Issuer, check: IntrospectionCheck
) -> None:
    grant = str(uuid.uuid4())
    first, second = claims(grant, "j1"), claims(grant, "j2")
    issuer.answers = {"t1": active(first), "t2": active(second)}
    assert await check.allows("t1", first)
    assert await check.allows("t2", second)
    assert await check.allows("t1", first)
    assert issuer.questions == ["t1"]


async def test_a_no_about_one_token_does_not_lock_out_another_of_its_grant(
    issuer: Issuer, check: IntrospectionCheck
) -> None:
    # Say t1 expired at the issuer a moment before it did here (clocks differ a little), and
    # the client has just refreshed to t2: t2 must not inherit t1's "no".
    grant = str(uuid.uuid4())
    old, new = claims(grant, "j1"), claims(grant, "j2")
    issuer.answers = {"t2": active(new)}
    assert not await check.allows("t1", old)
    assert await check.allows("t2", new)
    assert issuer.questions == ["t1", "t2"]


async def test_a_yes_about_another_token_or_grant_is_a_no(
    issuer: Issuer, check: IntrospectionCheck
) -> None:
    mine = claims(str(uuid.uuid4()), "j1")
    issuer.answers = {
        "t1": {"active": True, "jti": "someone-else", "gid": mine.grant_id},
        "t2": {"active": True, "jti": "j2", "gid": str(uuid.uuid4())},
    }
    assert not await check.allows("t1", mine)
    assert not await check.allows("t2", claims(mine.grant_id, "j2"))


@pytest.mark.parametrize(
    "reply",
    [
        lambda: JSONResponse([{"active": True}]),
        lambda: Response("active", media_type="text/plain"),
        lambda: JSONResponse({"active": True}, status_code=500),
        lambda: Response(status_code=302, headers={"location": "http://127.0.0.1:9/introspect"}),
    ],
    ids=["a list", "not json", "a 500", "a redirect"],
)
async def test_an_unusable_answer_is_unknown_never_a_yes(
    issuer: Issuer, check: IntrospectionCheck, reply: Callable[[], Response]
) -> None:
    issuer.reply = reply
    with pytest.raises(RevocationUnknown):
        await check.allows("t1", claims(str(uuid.uuid4()), "j1"))


async def test_credentials_go_only_to_the_issuer(issuer: Issuer) -> None:
    elsewhere = Issuer()
    with serve_asgi(app_of(elsewhere)) as url:
        issuer.introspection_endpoint = f"{url}/introspect"
        async with httpx.AsyncClient(timeout=5.0) as http:
            check = IntrospectionCheck(
                issuer=issuer.url, http=http, client_id=CLIENT_ID, client_secret=SECRET
            )
            with pytest.raises(RevocationUnknown):
                await check.allows("t1", claims(str(uuid.uuid4()), "j1"))
    assert elsewhere.questions == []


async def test_at_most_so_many_questions_are_open_at_once(
    issuer: Issuer, check: IntrospectionCheck
) -> None:
    many = [claims(str(uuid.uuid4()), f"j{n}") for n in range(3 * INTROSPECTION_CONCURRENCY)]
    issuer.answers = {f"t{n}": active(c) for n, c in enumerate(many)}
    issuer.hold.clear()
    asked = [asyncio.create_task(check.allows(f"t{n}", c)) for n, c in enumerate(many)]
    while issuer.open < INTROSPECTION_CONCURRENCY:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # time for any question beyond the limit to arrive
    assert issuer.open == INTROSPECTION_CONCURRENCY
    issuer.hold.set()
    assert all(await asyncio.gather(*asked))
    assert issuer.most_open == INTROSPECTION_CONCURRENCY
    assert len(issuer.questions) == len(many)
