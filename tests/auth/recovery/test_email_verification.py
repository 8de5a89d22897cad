"""Sign-up sends a verification link; the link confirms the address once; /account says whether
the address is confirmed and sends the link again (rate-limited)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit import AuditEvent
from app.auth.recovery import approval_blocker
from app.auth.recovery.models import AccountToken
from app.auth.recovery.tokens import purge
from app.db import utcnow
from tests.auth.recovery.conftest import delivered, gatehouse, path_of, token_of
from tests.conftest import client_for
from tests.helpers import (
    csrf_from,
    db_all,
    db_write,
    form_post,
    sign_up,
    unique_email,
    user_by_email,
)
from tests.mail.smtp_server import Mailbox


async def verify(client: httpx.AsyncClient, link: str) -> httpx.Response:
    page = await client.get(path_of(link))
    assert page.status_code == 200, page.text
    return await client.post(
        "/verify-email", data={"token": token_of(link), "csrf_token": csrf_from(page.text)}
    )


async def test_sign_up_mails_a_link_that_confirms_the_address_once(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client, name="Ada")
    mail = await delivered(mail_app, smtp_server, email)
    assert mail.recipients == (email,)
    assert mail.message["From"] == "Gatehouse Test <gatehouse@example.com>"
    assert mail.subject == "Confirm your email address for Gatehouse"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    link = mail.link("/verify-email")
    assert link.startswith("http://127.0.0.1:8000/verify-email?token=")
    assert len(token_of(link)) >= 43  # 256 bits, base64url
    assert "Hello Ada," in mail.text
    assert link in mail.html
    assert "http://127.0.0.1:8000" in mail.html
    assert (await user_by_email(mail_app, email)).email_verified_at is None

    # Opening the link (as a mail scanner would) changes nothing: it shows a button.
    for _ in range(2):
        page = await client.get(path_of(link))
        assert page.status_code == 200
        assert 'action="/verify-email"' in page.text
    assert (await user_by_email(mail_app, email)).email_verified_at is None

    done = await verify(client, link)
    assert done.status_code == 200, done.text
    assert f"{email} is confirmed" in done.text
    assert (await user_by_email(mail_app, email)).email_verified_at is not None
    account = await client.get("/account")
    assert "Email address confirmed." in account.text
    assert "Send again" not in account.text
    user = await user_by_email(mail_app, email)
    events = await db_all(mail_app, select(AuditEvent.kind).where(AuditEvent.user_id == user.id))
    assert [kind for (kind,) in events].count("email.verified") == 1

    again = await client.get(path_of(link))
    assert again.status_code == 410
    assert "already used, or it has expired" in again.text
    reused = await client.post(
        "/verify-email", data={"token": token_of(link), "csrf_token": csrf_from(page.text)}
    )
    assert reused.status_code == 410


async def test_an_expired_verification_link_is_refused_and_a_new_one_offered(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = (await delivered(mail_app, smtp_server, email)).link("/verify-email")
    user = await user_by_email(mail_app, email)
    await db_write(
        mail_app,
        update(AccountToken)
        .where(AccountToken.user_id == user.id)
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    page = await client.get(path_of(link))
    assert page.status_code == 410
    assert 'action="/account/verify-email"' in page.text  # signed in: "Send a new link"
    refused = await client.post(
        "/verify-email", data={"token": token_of(link), "csrf_token": csrf_from(page.text)}
    )
    assert refused.status_code == 410
    assert (await user_by_email(mail_app, email)).email_verified_at is None


async def test_the_account_page_says_unverified_and_sends_the_link_again(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    first = (await delivered(mail_app, smtp_server, email)).link("/verify-email")
    account = await client.get("/account")
    assert "Email address unverified." in account.text
    assert 'action="/account/verify-email"' in account.text
    assert 'id="mail-to-log"' not in account.text  # SMTP_URL is set: the mail went out

    sent = await form_post(client, "/account", "/account/verify-email", {})
    assert sent.status_code == 200
    assert f"We sent a new link to {email}" in sent.text
    second = (await delivered(mail_app, smtp_server, email, 2)).link("/verify-email")
    assert second != first
    assert (await verify(client, second)).status_code == 200
    # The older link still works until it expires: either proves the address. Once verified,
    # it changes nothing more.
    assert (await user_by_email(mail_app, email)).email_verified_at is not None


async def test_sending_again_is_limited_per_account_with_retry_after(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    limit = int(mail_app.state.settings.verify_limit_account.split()[0])
    for _ in range(limit):
        assert (await form_post(client, "/account", "/account/verify-email", {})).status_code == 200
    refused = await form_post(client, "/account", "/account/verify-email", {})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many emails" in refused.text
    await delivered(mail_app, smtp_server, email, 1 + limit)
    assert len(smtp_server.to(email)) == 1 + limit


async def test_sending_again_is_limited_per_ip(mail_app: FastAPI, smtp_server: Mailbox) -> None:
    limit = int(mail_app.state.settings.verify_limit_ip.split()[0])
    statuses = []
    async with client_for(mail_app, "10.89.0.1") as c:
        for n in range(limit + 1):
            if n % 4 == 0:  # a new account every few sends: the per-account limit stays clear
                c.cookies.clear()
                await sign_up(c)
            statuses.append(await form_post(c, "/account", "/account/verify-email", {}))
    assert [r.status_code for r in statuses] == [200] * limit + [429]
    assert int(statuses[-1].headers["retry-after"]) > 0


async def test_users_created_by_the_cli_are_verified(mail_app: FastAPI) -> None:
    email = unique_email("cli")
    result = await gatehouse(mail_app, "users", "create", "--email", email, "--password", "x" * 12)
    assert result.code == 0, result.err
    assert (await user_by_email(mail_app, email)).email_verified_at is not None


async def test_approval_needs_a_verified_address_only_when_required(
    mail_app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await sign_up(client)
    user = await user_by_email(mail_app, email)
    relaxed = mail_app.state.settings
    strict = relaxed.model_copy(update={"require_verified_email": True})
    assert approval_blocker(user, relaxed) is None
    reason = approval_blocker(user, strict)
    assert reason is not None
    assert email in reason
    assert "confirm" in reason
    user.email_verified_at = utcnow()
    assert approval_blocker(user, strict) is None


async def test_purge_deletes_links_that_can_never_work_again(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = (await delivered(mail_app, smtp_server, email)).link("/verify-email")
    user = await user_by_email(mail_app, email)
    mine = AccountToken.user_id == user.id
    async with mail_app.state.sessionmaker() as session, session.begin():
        await purge(session)
    assert len(await db_all(mail_app, select(AccountToken.id).where(mine))) == 1
    await db_write(
        mail_app,
        update(AccountToken).where(mine).values(expires_at=utcnow() - timedelta(days=2)),
    )
    async with mail_app.state.sessionmaker() as session, session.begin():
        assert await purge(session) >= 1
    assert await db_all(mail_app, select(AccountToken.id).where(mine)) == []
    assert (await client.get(path_of(link))).status_code == 410


async def test_sending_again_goes_back_only_to_a_page_of_ours(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    back = await form_post(
        client, "/account", "/account/verify-email", {"next": "/authorize?client_id=x"}
    )
    assert 'href="/authorize?client_id=x"' in back.text
    elsewhere = await form_post(
        client, "/account", "/account/verify-email", {"next": "https://evil.example/"}
    )
    assert 'href="/account"' in elsewhere.text
    assert "evil.example" not in elsewhere.text
