"""The periodic purge deletes used sign-in states once their cookies can no longer be presented,
and keeps every state that could still be replayed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.db import utcnow
from app.housekeeping import purge
from app.identity.flow import state_hash
from app.identity.models import UsedSignInState
from app.identity.service import USED_STATE_MARGIN
from app.oauth.admin import publish_window
from tests.conftest import client_for
from tests.helpers import db_all, db_write
from tests.identity.stub_idp import StubIdp
from tests.identity.support import Started, assert_replay_refused, begin, callback, new_code


async def _signed_in(web: httpx.AsyncClient, stub: StubIdp) -> tuple[Started, str, str]:
    """A finished sign-in: what was started, its state cookie, and its code."""
    started = await begin(web)
    cookie = web.cookies["gh_oidc"]
    sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
    stub.issue(code, stub.claims(nonce=started.nonce, sub=sub, email=f"{sub}@stub.example"))
    assert (await callback(web, started, code)).status_code == 303
    return started, cookie, code


async def _kept(app: FastAPI, *hashes: str) -> set[str]:
    rows = await db_all(
        app, select(UsedSignInState.state_hash).where(UsedSignInState.state_hash.in_(hashes))
    )
    return {row[0] for row in rows}


async def test_the_purge_deletes_used_states_past_their_window_and_keeps_the_rest(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    key = idp_app.state.settings.secret_key_bytes
    async with client_for(idp_app) as web:
        old, _, _ = await _signed_in(web, stub)
    async with client_for(idp_app) as web:
        recent, _, _ = await _signed_in(web, stub)
    async with client_for(idp_app) as web:
        fresh, fresh_cookie, fresh_code = await _signed_in(web, stub)
    old_hash, recent_hash, fresh_hash = (state_hash(key, s.state) for s in (old, recent, fresh))
    # `old` expired more than the margin ago; `recent` expired, but within the margin.
    past = utcnow() - USED_STATE_MARGIN - timedelta(seconds=1)
    await db_write(
        idp_app,
        update(UsedSignInState)
        .where(UsedSignInState.state_hash == old_hash)
        .values(expires_at=past),
    )
    await db_write(
        idp_app,
        update(UsedSignInState)
        .where(UsedSignInState.state_hash == recent_hash)
        .values(expires_at=utcnow() - USED_STATE_MARGIN + timedelta(seconds=60)),
    )
    settings = idp_app.state.settings
    async with idp_app.state.sessionmaker() as session, session.begin():
        counts = await purge(session, settings, publish_window(settings.access_token_ttl))
    assert counts["identity_used_states"] >= 1
    assert await _kept(idp_app, old_hash, recent_hash, fresh_hash) == {recent_hash, fresh_hash}
    # The fresh state's cookie is still readable: a replay of it is still refused.
    await assert_replay_refused(idp_app, fresh_cookie, fresh, fresh_code)
