"""One single-use reset link buys one password hash.

/reset-password checks the link (peek), hashes the new password, then spends the link. Without a
hold on the link while it hashes, every request sent with one live link during its first hash
would hash too: up to the hash pool's whole queue (threads x MAX_PENDING_PER_THREAD, shared
with sign-in, which is refused with 503 meanwhile), each only to find the link spent.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from app.auth import passwords
from tests.auth.recovery.conftest import path_of, token_of
from tests.auth.recovery.test_password_reset import NEW_PASSWORD, reset_link
from tests.helpers import csrf_from, sign_up
from tests.mail.smtp_server import Mailbox

BURST = 12


async def test_a_burst_on_one_reset_link_queues_at_most_one_hash(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    email = await sign_up(client)
    link = await reset_link(mail_app, client, smtp_server, email)
    page = await client.get(path_of(link))
    data = {
        "token": token_of(link),
        "new_password": NEW_PASSWORD,
        "csrf_token": csrf_from(page.text),
    }
    pool = passwords.pool()
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, pool.first.pending)
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    try:
        answers = await asyncio.gather(
            *(client.post("/reset-password", data=data) for _ in range(BURST))
        )
    finally:
        watcher.cancel()
    assert sorted(a.status_code for a in answers)[0] == 200  # the link worked once
    assert sum(a.status_code == 200 for a in answers) == 1
    assert peak <= 1, f"{peak} hashes queued at once for one single-use link"
