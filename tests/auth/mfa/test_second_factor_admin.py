"""Second factors at rest, REQUIRE_MFA's approval check, the admin's reset and the users list,
and one recovery code presented twice at once (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit import AuditEvent
from app.auth.mfa import challenges
from app.auth.mfa import totp as totp_service
from app.auth.mfa.models import MfaChallenge, TotpFactor
from app.auth.mfa.policy import approval_blocker
from app.db import utcnow
from app.kit.envelope import DecryptionError, Envelope, LocalKeyProvider
from tests.auth.mfa.support import SECURITY, enrol_totp, submit_code
from tests.auth.test_secrets_at_rest import dump_database
from tests.conftest import TEST_VAULT_KEYS, Backend, client_for, make_settings, running_app
from tests.helpers import db_all, db_scalar, sign_in, sign_up, user_by_email
from tests.test_cli import CliDatabase, cli, cli_app, create  # noqa: F401 - fixtures

NEW_KEY = "new1:" + "B" * 43 + "="


async def test_no_totp_secret_or_recovery_code_is_stored_in_plaintext(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    dump = await dump_database(app.state.engine)
    assert email in dump
    assert totp.secret not in dump
    assert totp.secret.lower() not in dump
    for code in totp.recovery_codes:
        assert code not in dump
        assert code.replace("-", "") not in dump


async def test_the_sealed_secret_opens_only_for_its_own_user(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    user = await user_by_email(app, email)
    row = await db_scalar(app, select(TotpFactor).where(TotpFactor.user_id == user.id))
    assert row is not None
    opened = await totp_service.open_secret(app.state.envelope, row)
    assert opened.reveal() == totp.secret
    assert repr(opened) == "***"
    row.user_id = uuid.uuid4()  # the same bytes, presented as another user's
    with pytest.raises(DecryptionError):
        await totp_service.open_secret(app.state.envelope, row)


async def test_require_mfa_blocks_approval_until_a_second_factor_exists(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    user = await user_by_email(app, email)
    required = app.state.settings.model_copy(update={"require_mfa": True})
    async with app.state.sessionmaker() as session:
        reason = await approval_blocker(session, user, required)
        assert reason is not None
        assert "/account/security" in reason
        assert await approval_blocker(session, user, app.state.settings) is None  # default off
    await enrol_totp(client)
    async with app.state.sessionmaker() as session:
        assert await approval_blocker(session, user, required) is None


async def test_the_security_page_says_when_a_second_factor_is_required(
    backend: Backend, tmp_path: Path
) -> None:
    async with running_app(make_settings(backend, tmp_path, require_mfa=True)) as app:
        async with client_for(app) as client:
            await sign_up(client)
            notice = "This service requires a second factor before you can approve an app"
            assert notice in (await client.get(SECURITY)).text
            await enrol_totp(client)
            assert notice not in (await client.get(SECURITY)).text


async def test_reset_mfa_removes_the_factors_and_is_audited(
    cli: CliDatabase,  # noqa: F811
    cli_app: FastAPI,  # noqa: F811
) -> None:
    email = f"mfa-{uuid.uuid4().hex[:8]}@example.com"
    await create(cli, email)
    async with client_for(cli_app) as client:
        assert (await sign_in(client, email)).status_code == 303
        await enrol_totp(client)
        listed = await cli.run("users", "list")
        assert listed.code == 0, listed.err
        (row,) = [line for line in listed.out.splitlines() if email in line]
        assert row.split()[4:6] == ["2fa:totp", "passkeys:0"]

        reset = await cli.run("users", "reset-mfa", email)
        assert reset.code == 0, reset.err
        assert reset.out.startswith(f"removed 1 second factor of {email}")
        listed = await cli.run("users", "list")
        (row,) = [line for line in listed.out.splitlines() if email in line]
        assert row.split()[4:6] == ["2fa:off", "passkeys:0"]

        client.cookies.clear()
        signed_in = await sign_in(client, email)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/account"  # the password alone again
    user = await user_by_email(cli_app, email)
    events = await db_all(
        cli_app,
        select(AuditEvent).where(AuditEvent.user_id == user.id, AuditEvent.kind == "mfa.reset"),
    )
    assert [e.detail for (e,) in events] == [{"actor": "cli", "totp": True, "passkeys": 0}]

    missing = await cli.run("users", "reset-mfa", "nobody@example.com")
    assert missing.code == 1
    assert "no user with email nobody@example.com" in missing.err


async def test_one_recovery_code_presented_twice_at_once_signs_in_once(
    backend: Backend, app: FastAPI
) -> None:
    if not backend.is_postgres:
        pytest.skip("a real race needs PostgreSQL's row locks (SQLite serialises writers)")
    async with client_for(app) as owner:
        email = await sign_up(owner)
        totp = await enrol_totp(owner)
    code = totp.recovery_codes[0]
    browsers = [client_for(app), client_for(app)]
    try:
        for browser in browsers:
            assert (await sign_in(browser, email)).headers["location"] == "/second-factor"
        for _ in range(3):  # several rounds: the race must be lost every time, not just once
            answers = await asyncio.gather(*(submit_code(b, code) for b in browsers))
            codes = sorted(a.status_code for a in answers)
            assert codes in ([303, 401], [401, 401])
            if codes == [303, 401]:
                break
        assert sorted(a.status_code for a in answers) == [303, 401]
        assert sum("gh_session" in b.cookies for b in browsers) == 1
    finally:
        for browser in browsers:
            await browser.aclose()


async def test_rewrap_moves_totp_secrets_to_the_new_master_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    user = await user_by_email(app, email)
    rotated = Envelope(LocalKeyProvider.from_env_value(f"{NEW_KEY},{TEST_VAULT_KEYS}"))
    async with app.state.sessionmaker() as session, session.begin():
        assert await totp_service.rewrap(session, rotated) >= 1
    row = await db_scalar(app, select(TotpFactor).where(TotpFactor.user_id == user.id))
    assert row is not None
    assert row.master_kid == "new1"
    only_new = Envelope(LocalKeyProvider.from_env_value(NEW_KEY))
    assert (await totp_service.open_secret(only_new, row)).reveal() == totp.secret
    # Back under the test key (active first, new1 still known), as the other tests expect.
    back = Envelope(LocalKeyProvider.from_env_value(f"{TEST_VAULT_KEYS},{NEW_KEY}"))
    async with app.state.sessionmaker() as session, session.begin():
        assert await totp_service.rewrap(session, back) >= 1
    row = await db_scalar(app, select(TotpFactor).where(TotpFactor.user_id == user.id))
    assert (await totp_service.open_secret(app.state.envelope, row)).reveal() == totp.secret


async def test_the_purge_deletes_expired_challenges_only(app: FastAPI) -> None:
    settings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        await challenges.issue(
            session, settings, value="old-" + uuid.uuid4().hex, purpose="t", user_id=None, ttl=-1
        )
        await challenges.issue(
            session, settings, value="new-" + uuid.uuid4().hex, purpose="t", user_id=None, ttl=300
        )
    async with app.state.sessionmaker() as session, session.begin():
        assert await challenges.purge(session) >= 1
    left = await db_all(app, select(MfaChallenge).where(MfaChallenge.purpose == "t"))
    assert len(left) >= 1
    assert all(row.expires_at > utcnow() for (row,) in left)
