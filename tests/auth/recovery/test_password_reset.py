"""Forgot password → a link by email → a new password: every session ends, apps are
disconnected when asked; the link works once and for 30 minutes; the form answers the same for
any address; an admin can print a link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit import AuditEvent
from app.auth.models import User
from app.auth.recovery.models import AccountToken
from app.db import utcnow
from app.oauth.models import OAuthGrant
from tests.auth.recovery.conftest import delivered, gatehouse, outbox_of, path_of, token_of
from tests.conftest import client_for
from tests.helpers import (
    PASSWORD,
    csrf_from,
    db_all,
    db_write,
    form_post,
    sessions_of,
    sign_in,
    sign_up,
    user_by_email,
)
from tests.mail.smtp_server import Mailbox
from tests.oauth.flow import register
from tests.oauth.support import full_flow

NEW_PASSWORD = "a brand new passphrase"


async def forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await form_post(client, "/forgot-password", "/forgot-password", {"email": email})


async def reset_link(app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> str:
    await outbox_of(app).idle()
    before = len(mailbox.to(email))
    assert (await forgot(client, email)).status_code == 200
    mail = await delivered(app, mailbox, email, before + 1)
    assert mail.subject == "Reset your Gatehouse password"
    return mail.link("/reset-password")


async def set_password(
    client: httpx.AsyncClient, link: str, password: str = NEW_PASSWORD, *, disconnect: bool = True
) -> httpx.Response:
    page = await client.get(path_of(link))
    assert page.status_code == 200, page.text
    data = {"token": token_of(link), "new_password": password, "csrf_token": csrf_from(page.text)}
    if disconnect:
        data["disconnect_apps"] = "yes"
    return await client.post("/reset-password", data=data)


async def grants_of(app: FastAPI, email: str) -> list[OAuthGrant]:
    user = await user_by_email(app, email)
    rows = await db_all(app, select(OAuthGrant).where(OAuthGrant.user_id == user.id))
    return [row for (row,) in rows]


async def connected(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    """Connect one app (a full code flow); returns its tokens."""
    registered = await register(client)
    _, tokens = await full_flow(client, registered["client_id"])
    return tokens


@pytest.mark.parametrize("disconnect", [True, False], ids=["disconnect", "keep-apps"])
async def test_a_reset_signs_out_every_session_and_disconnects_apps_when_chosen(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox, disconnect: bool
) -> None:
    email = await sign_up(client)
    # A proved address: for one nobody had proved, a reset disconnects every app whatever the
    # box says (tests/auth/recovery/test_account_takeback.py).
    user = await user_by_email(mail_app, email)
    await db_write(
        mail_app, update(User).where(User.id == user.id).values(email_verified_at=utcnow())
    )
    await connected(mail_app, client)
    async with client_for(mail_app, "10.90.0.2") as laptop:
        assert (await sign_in(laptop, email)).status_code == 303
        assert len([s for s in await sessions_of(mail_app, email) if s.revoked_at is None]) == 2

        page = await client.get(
            path_of(link := await reset_link(mail_app, client, smtp_server, email))
        )
        assert 'name="disconnect_apps" value="yes" checked' in page.text  # the default
        done = await set_password(client, link, disconnect=disconnect)
        assert done.status_code == 200, done.text
        assert "Your password was changed" in done.text

        # Every session is gone, this browser's and the laptop's.
        assert all(s.revoked_at is not None for s in await sessions_of(mail_app, email))
        for browser in (client, laptop):
            assert (await browser.get("/account")).status_code == 303
    grants = await grants_of(mail_app, email)
    assert len(grants) == 1
    if disconnect:
        assert grants[0].revoked_at is not None
        assert grants[0].revoked_reason == "password_reset"
    else:
        assert grants[0].revoked_at is None

    assert (await sign_in(client, email, PASSWORD)).status_code == 401
    assert (await sign_in(client, email, NEW_PASSWORD)).status_code == 303
    notice = await delivered(mail_app, smtp_server, email, 3)  # verify, reset link, notice
    assert notice.subject == "Your Gatehouse password was reset"
    assert ("every connected app was disconnected" in notice.text) is disconnect
    assert "UTC" in notice.text
    user = await user_by_email(mail_app, email)
    [(event,)] = await db_all(
        mail_app,
        select(AuditEvent).where(
            AuditEvent.user_id == user.id, AuditEvent.kind == "password.reset"
        ),
    )
    assert event.detail["disconnected_apps"] is disconnect
    assert event.detail["sessions"] == 2
    assert user.email_verified_at is not None  # the link reached the address


async def test_a_reset_link_works_once(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = await reset_link(mail_app, client, smtp_server, email)
    page = await client.get(path_of(link))
    assert (await set_password(client, link)).status_code == 200
    again = await client.get(path_of(link))
    assert again.status_code == 410
    assert 'href="/forgot-password"' in again.text
    replay = await client.post(
        "/reset-password",
        data={
            "token": token_of(link),
            "new_password": "yet another password",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert replay.status_code == 410
    assert (await sign_in(client, email, NEW_PASSWORD)).status_code == 303


async def test_an_expired_reset_link_is_refused_and_offers_a_new_one(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = await reset_link(mail_app, client, smtp_server, email)
    user = await user_by_email(mail_app, email)
    token = await db_all(
        mail_app,
        select(AccountToken.expires_at, AccountToken.created_at).where(
            AccountToken.user_id == user.id, AccountToken.purpose == "reset_password"
        ),
    )
    [(expires_at, created_at)] = token
    assert expires_at - created_at == timedelta(minutes=30)
    await db_write(
        mail_app,
        update(AccountToken)
        .where(AccountToken.user_id == user.id, AccountToken.purpose == "reset_password")
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    page = await client.get(path_of(link))
    assert page.status_code == 410
    assert "Ask for a new link" in page.text
    refused = await client.post(
        "/reset-password",
        data={
            "token": token_of(link),
            "new_password": NEW_PASSWORD,
            "csrf_token": csrf_from((await client.get("/forgot-password")).text),
        },
    )
    assert refused.status_code == 410
    client.cookies.delete("gh_session")
    assert (await sign_in(client, email, PASSWORD)).status_code == 303  # unchanged


async def test_a_weak_new_password_is_refused_and_the_link_still_works(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = await reset_link(mail_app, client, smtp_server, email)
    weak = await set_password(client, link, "short")
    assert weak.status_code == 400
    assert "at least 8 characters" in weak.text
    assert (await set_password(client, link)).status_code == 200


async def test_forgot_password_answers_the_same_for_known_and_unknown_addresses(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    known = await sign_up(client)
    client.cookies.delete("gh_session")
    unknown = "nobody-" + known
    outbox = outbox_of(mail_app)
    await outbox.idle()
    answers = {}
    queued = {}
    for email in (known, unknown):
        before = outbox.counts["accepted"]
        answers[email] = await forgot(client, email)
        await outbox.idle()
        queued[email] = outbox.counts["accepted"] - before
    a, b = answers[known], answers[unknown]
    assert a.status_code == b.status_code == 200
    assert a.text == b.text
    assert "If an account uses that address" in a.text
    assert {k: v for k, v in a.headers.items() if k != "date"} == {
        k: v for k, v in b.headers.items() if k != "date"
    }
    assert queued == {known: 1, unknown: 0}
    assert len(smtp_server.to(known)) == 2  # verification, then the reset link
    assert smtp_server.to(unknown) == []


async def test_forgot_password_is_limited_per_address_and_per_ip(
    mail_app: FastAPI, smtp_server: Mailbox
) -> None:
    settings = mail_app.state.settings
    per_email = int(settings.forgot_limit_email.split()[0])
    per_ip = int(settings.forgot_limit_ip.split()[0])
    async with client_for(mail_app, "10.91.0.1") as c:
        target = "target-" + (await sign_up(c))
        sent = [await forgot(c, target) for _ in range(per_email + 1)]
    # Past the per-address limit nothing more is sent, but nobody can tell (and so nobody can
    # stop the owner's reset by using up the address's allowance).
    assert [r.status_code for r in sent] == [200] * (per_email + 1)
    assert len({r.text for r in sent}) == 1
    async with client_for(mail_app, "10.91.0.2") as c:
        answers = [await forgot(c, f"n{n}-someone@example.com") for n in range(per_ip + 1)]
    assert [r.status_code for r in answers] == [200] * per_ip + [429]
    assert int(answers[-1].headers["retry-after"]) > 0


async def test_the_cli_prints_a_one_time_link_an_admin_can_hand_over(
    mail_app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await sign_up(client)
    result = await gatehouse(mail_app, "users", "reset-password", email)
    assert result.code == 0, result.err
    link = result.out.strip()
    assert link.startswith("http://127.0.0.1:8000/reset-password?token=")
    assert "works once, for 30 minutes" in result.err
    assert (await set_password(client, link)).status_code == 200
    assert (await client.get(path_of(link))).status_code == 410
    assert (await sign_in(client, email, NEW_PASSWORD)).status_code == 303

    missing = await gatehouse(mail_app, "users", "reset-password", "nobody@example.com")
    assert missing.code == 1
    assert "no user with email nobody@example.com" in missing.err
