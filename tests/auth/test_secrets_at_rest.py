"""No plaintext password or session token is ever stored: dump every row of every table."""

from __future__ import annotations

import hashlib
import hmac
import warnings

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TEST_SECRET_KEY
from tests.helpers import PASSWORD, form_post, sessions_of, sign_in, sign_up

NEW_PASSWORD = "second secret passphrase"
WRONG_PASSWORD = "a wrong guess at the secret"


async def dump_database(engine: AsyncEngine) -> str:
    """Every value in every table, as text."""
    metadata = MetaData()
    async with engine.connect() as conn:
        with warnings.catch_warnings():
            # SQLite cannot reflect the lower(email) index; the rows are all this needs.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
            await conn.run_sync(metadata.reflect)
        assert {"users", "sessions", "audit_events"} <= set(metadata.tables)
        chunks = []
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                chunks.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(chunks)


async def test_no_password_or_session_token_is_stored_in_plaintext(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    first_token = client.cookies["gh_session"]
    client.cookies.delete("gh_session")
    assert (await sign_in(client, email, WRONG_PASSWORD)).status_code == 401
    assert (await sign_in(client, email)).status_code == 303
    second_token = client.cookies["gh_session"]
    changed = await form_post(
        client,
        "/account",
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    csrf_cookie = client.cookies["gh_csrf"]

    dump = await dump_database(app.state.engine)

    assert email in dump  # the dump does see the rows
    for secret in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, first_token, second_token, csrf_cookie):
        assert secret not in dump
        assert secret.removeprefix("gh_s_") not in dump


async def test_a_session_is_stored_as_the_hmac_sha256_of_its_token(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    token = client.cookies["gh_session"]
    (record,) = await sessions_of(app, email)
    expected = hmac.new(
        TEST_SECRET_KEY.encode(), b"session\x00" + token.encode(), hashlib.sha256
    ).hexdigest()
    assert record.token_hash == expected
