"""A real `gatehouse serve` process: with SMTP_URL its mail reaches the SMTP server (and no link
token lands in its log or the database); without one, in development, each message is one block
in its log, with a link that works; on PostgreSQL one reset link used twice at once gives exactly
one success."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.recovery.models import AccountToken
from tests.auth.recovery.conftest import path_of, token_of
from tests.conftest import Backend, LiveServer, start_server
from tests.helpers import csrf_from, db_all, form_post, sign_up, unique_email, user_by_email
from tests.mail.smtp_server import Mailbox

ROUNDS = 5
DEV_LINK = re.compile(r"http://127\.0\.0\.1:\d+/verify-email\?token=[A-Za-z0-9_\-]+")


@pytest.fixture(scope="module")
def mailing_server(
    backend: Backend, smtp_server: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        backend, tmp_path_factory.mktemp("mailing"), SMTP_URL=smtp_server.url, MAIL_BACKOFF="0.1"
    )
    yield server
    server.stop()


async def reset_link(server: LiveServer, mailbox: Mailbox, email: str, nth: int) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        response = await form_post(c, "/forgot-password", "/forgot-password", {"email": email})
        assert response.status_code == 200
    return (await mailbox.wait_for(email, nth))[nth - 1].link("/reset-password")


async def test_the_server_sends_real_mail_and_keeps_no_token_in_its_log_or_database(
    mail_app: FastAPI, mailing_server: LiveServer, smtp_server: Mailbox
) -> None:
    async with httpx.AsyncClient(base_url=mailing_server.url, timeout=30) as browser:
        email = await sign_up(browser)
        verify = (await smtp_server.wait_for(email))[0].link("/verify-email")
        assert verify.startswith(mailing_server.url + "/verify-email?token=")
        page = await browser.get(path_of(verify))
        done = await browser.post(
            "/verify-email", data={"token": token_of(verify), "csrf_token": csrf_from(page.text)}
        )
        assert done.status_code == 200
    reset = await reset_link(mailing_server, smtp_server, email, 2)
    async with httpx.AsyncClient(base_url=mailing_server.url, timeout=30) as browser:
        page = await browser.get(path_of(reset))
        assert page.status_code == 200  # and the access log line carries the token...
    assert (await user_by_email(mail_app, email)).email_verified_at is not None

    user = await user_by_email(mail_app, email)
    rows = await db_all(mail_app, select(AccountToken).where(AccountToken.user_id == user.id))
    assert len(rows) == 2
    stored = " ".join(
        f"{r.id} {r.purpose} {r.token_hash} {r.new_email} {r.created_at} {r.expires_at}"
        for (r,) in rows
    )
    log = mailing_server.log.read_text()
    assert "GET /reset-password?token=[redacted]" in log  # ...scrubbed
    for token in (token_of(verify), token_of(reset)):
        assert token not in stored
        assert token not in log
    assert "outgoing mail goes to smtp://127.0.0.1:" in log


async def test_without_smtp_url_development_writes_each_message_to_the_log(
    backend: Backend, tmp_path: Path
) -> None:
    server = start_server(backend, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
            email = await sign_up(browser, unique_email("devlog"))
            deadline = time.monotonic() + 30
            while not DEV_LINK.search(log := server.log.read_text()):
                assert time.monotonic() < deadline, log
                await asyncio.sleep(0.1)
            assert "mail not sent (no SMTP_URL): written here instead" in log
            assert f"To:      {email}" in log
            assert "Subject: Confirm your email address for Gatehouse" in log
            link = DEV_LINK.findall(log)[-1]
            page = await browser.get(path_of(link))
            done = await browser.post(
                "/verify-email", data={"token": token_of(link), "csrf_token": csrf_from(page.text)}
            )
            assert done.status_code == 200
            assert f"{email} is confirmed" in done.text
    finally:
        server.stop()


async def test_one_reset_link_used_twice_at_once_succeeds_exactly_once(
    backend: Backend, mailing_server: LiveServer, smtp_server: Mailbox
) -> None:
    if not backend.is_postgres:
        pytest.skip("races are meaningful under PostgreSQL; SQLite serialises every writer")
    async with httpx.AsyncClient(base_url=mailing_server.url, timeout=30) as c:
        email = await sign_up(c)
    await smtp_server.wait_for(email)
    for n in range(ROUNDS):
        link = await reset_link(mailing_server, smtp_server, email, 2 + 2 * n)
        async with (
            httpx.AsyncClient(base_url=mailing_server.url, timeout=30) as one,
            httpx.AsyncClient(base_url=mailing_server.url, timeout=30) as two,
        ):
            pages = [await one.get(path_of(link)), await two.get(path_of(link))]
            posts = [
                browser.post(
                    "/reset-password",
                    data={
                        "token": token_of(link),
                        "new_password": f"new password number {n} by {i}",
                        "csrf_token": csrf_from(page.text),
                    },
                )
                for i, (browser, page) in enumerate(zip((one, two), pages, strict=True))
            ]
            responses = await asyncio.gather(*posts)
        assert sorted(r.status_code for r in responses) == [200, 410], [r.text for r in responses]
        # exactly one notice per round
        await smtp_server.wait_for(email, 3 + 2 * n)
        assert len(smtp_server.to(email)) == 3 + 2 * n
