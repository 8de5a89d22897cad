"""A burst of concurrent wrong passwords against a live server: counted before the work, bounded.

The attempt is counted before argon2 runs, so a burst of 100 concurrent guesses for one account
gets at most SIGNIN_LIMIT_ACCOUNT password checks (counted in the audit log the server writes),
the password-hash gate keeps the process's peak memory to a few hashes' worth, and the owner,
signing in from a browser the account knows, gets in during the burst.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.audit import AuditEvent
from app.auth.models import User
from tests.conftest import Backend, LiveServer, start_server
from tests.helpers import PASSWORD, csrf_from, unique_email

ARGON2_MIB = 64  # pwdlib's argon2id memory cost per hash
CONCURRENCY = 2
LIMIT = 10
ATTACKER = {"X-Forwarded-For": "198.51.100.9"}
OWNER = {"X-Forwarded-For": "203.0.113.5"}


def peak_rss_mib(server: LiveServer) -> float:
    """The server process's high-water resident set size (VmHWM), in MiB."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) / 1024


async def form_token(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return csrf_from((await client.get("/sign-in", headers=headers)).text)


async def failures_of(backend: Backend, email: str) -> tuple[int, int]:
    """(password checks that failed, attempts refused before any check) for the account."""
    engine = create_async_engine(backend.url)
    try:
        async with engine.connect() as conn:
            user_id = (await conn.execute(select(User.id).where(User.email == email))).scalar_one()
            count = select(func.count()).select_from(AuditEvent)
            failed = (
                await conn.execute(
                    count.where(AuditEvent.kind == "signin.failure", AuditEvent.user_id == user_id)
                )
            ).scalar_one()
            throttled = (
                await conn.execute(
                    count.where(
                        AuditEvent.kind == "signin.throttled", AuditEvent.ip == "198.51.100.9"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return int(failed), int(throttled)


async def test_a_burst_of_wrong_passwords_is_counted_before_the_work_and_bounded(
    backend: Backend, tmp_path: Path
) -> None:
    server = start_server(
        backend,
        tmp_path,
        PASSWORD_HASH_CONCURRENCY=str(CONCURRENCY),
        SIGNIN_LIMIT_ACCOUNT=f"{LIMIT} per 15 minutes",
        SIGNIN_LIMIT_IP="50 per 15 minutes",
    )
    limits = httpx.Limits(max_connections=120, max_keepalive_connections=120)
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as attacker,
            httpx.AsyncClient(base_url=server.url, timeout=120) as owner,
        ):
            email = unique_email("burst")
            token = await form_token(owner, OWNER)
            signed_up = await owner.post(
                "/sign-up",
                data={"email": email, "password": PASSWORD, "csrf_token": token},
                headers=OWNER,
            )
            assert signed_up.status_code == 303, signed_up.text
            owner.cookies.delete("gh_session")  # signed out, but the browser is known
            owner_token = await form_token(owner, OWNER)
            attacker_token = await form_token(attacker, ATTACKER)
            before = peak_rss_mib(server)

            async def guess() -> int:
                data = {
                    "email": email,
                    "password": "wrong-" + PASSWORD,
                    "csrf_token": attacker_token,
                }
                return (await attacker.post("/sign-in", data=data, headers=ATTACKER)).status_code

            async def owner_signs_in() -> httpx.Response:
                await asyncio.sleep(0.05)  # inside the burst, not before it
                data = {"email": email, "password": PASSWORD, "csrf_token": owner_token}
                return await owner.post("/sign-in", data=data, headers=OWNER)

            *statuses, mine = await asyncio.gather(*(guess() for _ in range(100)), owner_signs_in())
            after = peak_rss_mib(server)
    finally:
        server.stop()

    assert mine.status_code == 303, mine.text
    assert mine.headers["location"] == "/account"
    assert statuses.count(401) <= LIMIT
    assert set(statuses) <= {401, 429, 503}, statuses
    failed, throttled = await failures_of(backend, email)
    assert failed == statuses.count(401)
    assert failed <= LIMIT
    assert throttled == statuses.count(429)
    # At most CONCURRENCY hashes in memory at once, plus slack for 100 requests in flight.
    assert after - before < (CONCURRENCY + 1) * ARGON2_MIB + 100, (before, after)
