"""Credentials at rest: no plaintext token in the database files or any table after a full flow; a
row moved to another user or connector, or tampered with, does not open and the tool says so in
plain words; rekey_batch never overwrites a credential replaced while it runs."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from app.kit.envelope import Envelope, LocalKeyProvider, SecretValue
from app.vault import service as vault
from app.vault.models import Credential
from tests.conftest import Backend, client_for
from tests.connectors.support import (
    Person,
    access_token,
    call_tool,
    connected_person,
    error_text,
    github_token,
    replace_credential,
    structured,
)
from tests.helpers import db_scalar, db_write, sign_up, user_by_email

UNREADABLE = "Your stored GitHub credential cannot be read. Reconnect it at"


@pytest.fixture
async def alice(github_app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(github_app) as web:
        yield await connected_person(github_app, web, "alice")


async def row_of(app: FastAPI, user_id: uuid.UUID) -> Credential:
    row = await db_scalar(app, select(Credential).where(Credential.user_id == user_id))
    assert row is not None
    return row  # type: ignore[no-any-return]


async def database_text(app: FastAPI, backend: Backend) -> bytes:
    """Everything the database holds, as bytes: the files (SQLite) or every row of every table."""
    if not backend.is_postgres:
        path = Path(str(make_url(backend.url).database))
        files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-journal", "-shm"))]
        return b"".join(f.read_bytes() for f in files if f.exists())
    async with app.state.sessionmaker() as session:
        tables = (
            await session.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        dump = []
        for table in list(tables):
            rows = await session.execute(text(f'SELECT t::text FROM "{table}" t'))  # noqa: S608
            dump.extend(rows.scalars())
    return "\n".join(dump).encode()


async def test_no_plaintext_token_in_the_database_after_a_full_flow(
    github_app: FastAPI, backend: Backend, alice: Person
) -> None:
    structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    structured(await call_tool(alice.web, alice.access_token, "github_list_repos"))
    replacement = github_token("alice")
    assert (await replace_credential(alice.web, replacement)).status_code == 303
    structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    rejected = "ghp_expired_" + github_token("x")[-12:]
    assert (await replace_credential(alice.web, rejected)).status_code == 400

    stored = await database_text(github_app, backend)
    assert b"alice" in stored  # the dump does hold the rows (the upstream login is shown)
    for token in (alice.github_token, replacement, rejected):
        secret = token.encode()
        assert secret not in stored
        assert secret.hex().encode() not in stored  # bytea renders as hex
        assert base64.b64encode(secret) not in stored
        assert token[-16:].encode() not in stored


async def test_a_row_moved_to_another_user_does_not_open(
    github_app: FastAPI, alice: Person
) -> None:
    async with client_for(github_app) as web:
        email = await sign_up(web)
        bearer = await access_token(web)  # connects nothing
        mallory = await user_by_email(github_app, email)
        await db_write(
            github_app,
            update(Credential)
            .where(Credential.user_id == alice.user_id)
            .values(user_id=mallory.id),
        )
        result = await call_tool(web, bearer, "github_whoami")
        page = await web.get("/account/credentials")
    text_ = error_text(result)
    assert UNREADABLE in text_
    assert "http://127.0.0.1:8000/account/credentials" in text_
    assert alice.github_token not in text_
    assert page.status_code == 200  # the page still renders for the unreadable row
    assert alice.github_token not in page.text


async def test_a_row_moved_to_another_connector_does_not_open(
    github_app: FastAPI, alice: Person
) -> None:
    await db_write(
        github_app,
        update(Credential).where(Credential.user_id == alice.user_id).values(connector="gitlab"),
    )
    with pytest.raises(vault.CredentialUnreadable) as caught:
        await vault.load(
            github_app.state.sessionmaker,
            github_app.state.envelope,
            user_id=alice.user_id,
            connector="gitlab",
        )
    assert alice.github_token not in str(caught.value)
    # And moved back, it opens again: nothing else was wrong with it.
    await db_write(
        github_app,
        update(Credential).where(Credential.user_id == alice.user_id).values(connector="github"),
    )
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me["login"] == "alice"


@pytest.mark.parametrize("where", ["ciphertext", "wrapped_key", "version", "kid", "truncated"])
async def test_a_tampered_row_is_a_clear_error_and_reconnecting_fixes_it(
    github_app: FastAPI, alice: Person, where: str
) -> None:
    sealed = bytearray((await row_of(github_app, alice.user_id)).sealed)
    kid_len = sealed[1]
    if where == "ciphertext":
        sealed[-1] ^= 0x01
    elif where == "wrapped_key":
        sealed[2 + kid_len + 2 + 3] ^= 0x80
    elif where == "version":
        sealed[0] = 2
    elif where == "kid":
        sealed[2] = ord("z")
    else:
        sealed = sealed[:20]
    await db_write(
        github_app,
        update(Credential).where(Credential.user_id == alice.user_id).values(sealed=bytes(sealed)),
    )
    text_ = error_text(await call_tool(alice.web, alice.access_token, "github_list_repos"))
    assert UNREADABLE in text_
    assert alice.github_token not in text_
    # The person reconnects on the credentials page and the tools work again.
    assert (await replace_credential(alice.web, github_token("alice"))).status_code == 303
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me["login"] == "alice"


def _key(fill: str) -> str:
    return base64.b64encode(fill.encode() * 32).decode()


async def test_rekey_batch_never_overwrites_a_credential_replaced_meanwhile(
    github_app: FastAPI,
) -> None:
    """rekey_batch reads a row, then updates it only if its generation is unchanged. The row is
    replaced between those two steps here: the rekeyer's session already holds the old row (its
    identity map keeps the loaded state), another session replaces the secret through a replica
    still configured with the old key first, then the batch runs."""
    old = Envelope(LocalKeyProvider.from_env_value(f"k1:{_key('a')}"))
    new = Envelope(LocalKeyProvider.from_env_value(f"k2:{_key('b')},k1:{_key('a')}"))
    sessionmaker = github_app.state.sessionmaker
    async with client_for(github_app) as web:
        user = await user_by_email(github_app, await sign_up(web))
    async with sessionmaker() as session, session.begin():
        await vault.store(
            session,
            old,
            user_id=user.id,
            connector="github",
            secret=SecretValue("ghp_first_secret"),
            upstream_account="first",
        )

    async with sessionmaker() as rekeyer:
        stale = await vault.find(rekeyer, user.id, "github")
        assert stale is not None
        await rekeyer.commit()  # end the read; the loaded state stays in the identity map
        async with sessionmaker() as other, other.begin():
            await vault.store(
                other,
                old,
                user_id=user.id,
                connector="github",
                secret=SecretValue("ghp_second_secret"),
                upstream_account="second",
            )
        progress = await vault.rekey_batch(rekeyer, new, after=None, batch=10_000)
        await rekeyer.commit()
    assert progress.rewrapped == 0  # the guard refused the stale write

    async with sessionmaker() as session:
        row = await vault.find(session, user.id, "github")
        assert row is not None
        assert row.upstream_account == "second"
        assert (await vault.unseal(new, row)).secret.reveal() == "ghp_second_secret"
        assert row.master_kid == "k1"

    # The next run re-wraps the new secret; it still opens, now under k2 only.
    async with sessionmaker() as session, session.begin():
        await vault.rekey_batch(session, new, after=None, batch=10_000)
    only_k2 = Envelope(LocalKeyProvider.from_env_value(f"k2:{_key('b')}"))
    async with sessionmaker() as session:
        row = await vault.find(session, user.id, "github")
        assert row is not None
        assert row.master_kid == "k2"
        assert (await vault.unseal(only_k2, row)).secret.reveal() == "ghp_second_secret"
        await session.delete(row)
        await session.commit()
