"""Driving a provider sign-in through Gatehouse's HTTP surface, without a browser."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.audit import AuditEvent
from app.identity.models import Identity
from tests.conftest import client_for
from tests.helpers import db_all

REASON_RE = re.compile(r'data-reason="([^"]+)"')


@dataclass(frozen=True)
class Started:
    provider: str
    params: dict[str, str]

    @property
    def state(self) -> str:
        return self.params["state"]

    @property
    def nonce(self) -> str:
        return self.params.get("nonce", "")


async def begin(client: httpx.AsyncClient, provider: str = "stub", next_path: str = "") -> Started:
    response = await client.get(
        f"/sign-in/{provider}", params={"next": next_path} if next_path else None
    )
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return Started(provider, {k: v[0] for k, v in query.items()})


async def callback(
    client: httpx.AsyncClient, started: Started, code: str, **extra: str
) -> httpx.Response:
    params = {"code": code, "state": started.state, **extra}
    return await client.get(f"/sign-in/{started.provider}/callback", params=params)


async def assert_replay_refused(app: FastAPI, cookie: str, started: Started, code: str) -> None:
    """Another browser presenting a used state cookie again is refused, and signs nobody in."""
    async with client_for(app) as replayer:
        replayer.cookies.set("gh_oidc", cookie)
        replay = await callback(replayer, started, code)
    assert replay.status_code == 400
    assert reason(replay) == "state_replayed"
    assert "gh_session" not in replayer.cookies


def new_code() -> str:
    return "code-" + secrets.token_urlsafe(12)


def reason(response: httpx.Response) -> str:
    match = REASON_RE.search(response.text)
    assert match, f"not a refusal page ({response.status_code}): {response.text[:300]}"
    return match.group(1)


async def identities_for(app: FastAPI, subject: str) -> list[Identity]:
    return [
        row[0] for row in await db_all(app, select(Identity).where(Identity.subject == subject))
    ]


async def refusals(app: FastAPI, reason_code: str) -> list[AuditEvent]:
    rows = await db_all(app, select(AuditEvent).where(AuditEvent.kind == "identity.refused"))
    return [row[0] for row in rows if row[0].detail.get("reason") == reason_code]
