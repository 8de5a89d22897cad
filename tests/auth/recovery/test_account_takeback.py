"""Taking an account back by email: a password reset removes every way in that whoever held the
account may have added (a linked provider identity; for an address nobody had proved, every
connected app), an administrator's link proves nothing about the address, and an account made
through a provider (no password) gets a plain answer when it asks to change its address."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.auth.models import User
from app.db import utcnow
from app.identity.models import Identity
from tests.auth.recovery.conftest import gatehouse, outbox_of
from tests.auth.recovery.test_password_reset import (
    connected,
    grants_of,
    reset_link,
    set_password,
)
from tests.helpers import db_all, db_write, form_post, sign_up, unique_email, user_by_email
from tests.mail.smtp_server import Mailbox


async def _link_identity(app: FastAPI, email: str, subject: str) -> None:
    user = await user_by_email(app, email)
    async with app.state.sessionmaker() as session, session.begin():
        session.add(
            Identity(
                user_id=user.id,
                provider="stub",
                issuer="https://idp.example",
                subject=subject,
                email=email,
                email_verified=True,
                last_used_at=utcnow(),
            )
        )


async def test_a_reset_takes_back_a_squatted_account_whole(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    # Someone signs up with the owner's address (never proving it), links their own provider
    # identity and connects an app; the owner then resets the password from the mailbox and
    # leaves "disconnect every app" unticked.
    email = await sign_up(client)
    await _link_identity(mail_app, email, subject=unique_email("squatter"))
    await connected(mail_app, client)
    assert await grants_of(mail_app, email)

    link = await reset_link(mail_app, client, smtp_server, email)
    assert (await set_password(client, link, disconnect=False)).status_code == 200

    user = await user_by_email(mail_app, email)
    assert await db_all(mail_app, select(Identity).where(Identity.user_id == user.id)) == []
    assert all(g.revoked_at is not None for g in await grants_of(mail_app, email))
    assert user.email_verified_at is not None  # the mailed link reached the address


async def test_a_reset_of_a_proved_address_keeps_apps_when_asked_but_unlinks_providers(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    user = await user_by_email(mail_app, email)
    await db_write(
        mail_app, update(User).where(User.id == user.id).values(email_verified_at=utcnow())
    )
    await _link_identity(mail_app, email, subject=unique_email("owner"))
    await connected(mail_app, client)

    link = await reset_link(mail_app, client, smtp_server, email)
    assert (await set_password(client, link, disconnect=False)).status_code == 200
    assert await db_all(mail_app, select(Identity).where(Identity.user_id == user.id)) == []
    assert any(g.revoked_at is None for g in await grants_of(mail_app, email))
    # The notice leaves through the outbox after the answer: the last message once it is idle.
    await asyncio.wait_for(outbox_of(mail_app).idle(), 30)
    notice = smtp_server.to(email)[-1]
    assert "Sign-in through an identity provider was unlinked" in notice.text


async def test_an_administrators_link_does_not_prove_the_address(
    mail_app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await sign_up(client)
    result = await gatehouse(mail_app, "users", "reset-password", email)
    assert result.code == 0, result.err
    assert (await set_password(client, result.out.strip())).status_code == 200
    assert (await user_by_email(mail_app, email)).email_verified_at is None


async def test_a_passwordless_account_asking_to_change_its_address_is_told_plainly(
    mail_app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await sign_up(client)
    user = await user_by_email(mail_app, email)
    await db_write(mail_app, update(User).where(User.id == user.id).values(password_hash=""))
    response = await form_post(
        client,
        "/account",
        "/account/email",
        {"new_email": unique_email("new"), "current_password": ""},
    )
    assert response.status_code == 400
    assert "The current password is not right." in response.text
