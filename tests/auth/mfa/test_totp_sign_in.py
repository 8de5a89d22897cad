"""TOTP (RFC 6238) and recovery codes through the pages: enrolment, the code page after the
password, replay, the single-use pending state and codes, lock-out shared with passwords."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit import AuditEvent
from app.auth.mfa.models import TotpFactor
from app.auth.models import User
from tests.auth.mfa.support import (
    SECURITY,
    codes_on,
    enrol_totp,
    secret_on,
    submit_code,
    wrong_code,
)
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    csrf_from,
    db_all,
    db_scalar,
    db_write,
    form_post,
    sessions_of,
    sign_in,
    sign_up,
    user_by_email,
)
from tests.oauth.flow import Authorization, register


async def signed_out(client: httpx.AsyncClient) -> None:
    client.cookies.clear()


async def test_enrolment_shows_the_key_then_turns_on_with_ten_codes_shown_once(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    totp = await enrol_totp(client)
    assert len(set(totp.recovery_codes)) == 10
    page = await client.get(SECURITY)
    assert "On. Signing in asks for the 6-digit code" in page.text
    assert "10 recovery codes left" in page.text
    assert 'id="totp-secret"' not in page.text
    assert not codes_on(page.text)
    assert totp.recovery_codes[0] not in page.text


async def test_a_wrong_code_does_not_turn_it_on(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    await form_post(client, SECURITY, SECURITY + "/totp", {})
    secret = secret_on((await client.get(SECURITY)).text)
    refused = await form_post(
        client, SECURITY, SECURITY + "/totp/confirm", {"code": wrong_code(secret)}
    )
    assert refused.status_code == 400
    assert "That code is not right" in refused.text
    assert secret_on(refused.text) == secret  # still enrolling, same key
    assert not codes_on(refused.text)


async def test_a_key_shown_but_never_confirmed_is_no_second_factor(
    client: httpx.AsyncClient,
) -> None:
    """Only a confirmed TOTP sends the sign-in to the code page: an enrolment left unfinished
    must not lock its owner out behind codes they never set up."""
    email = await sign_up(client)
    await form_post(client, SECURITY, SECURITY + "/totp", {})
    assert secret_on((await client.get(SECURITY)).text)
    await signed_out(client)
    answer = await sign_in(client, email)
    assert answer.status_code == 303
    assert answer.headers["location"] != "/second-factor"
    assert client.cookies.get("gh_session")


async def test_the_password_alone_gives_no_session_and_skipping_the_code_page_fails(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    await enrol_totp(client)
    reg = await register(client)
    auth = Authorization(client_id=reg["client_id"])
    await signed_out(client)

    answer = await sign_in(client, email)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/second-factor"
    assert "gh_session" not in client.cookies
    assert client.cookies.get("gh_2fa")
    assert len(await sessions_of(app, email)) == 1  # only the sign-up's

    # With only the pending cookie, nothing that needs a signed-in person opens.
    for path in ("/account", SECURITY, "/account/apps", auth.url()):
        response = await client.get(path)
        assert response.status_code == 303, (path, response.status_code)
        assert response.headers["location"].startswith("/sign-in?next="), path
    consent = await form_post(
        client, "/second-factor", "/consent", {"action": "approve", "pending": "x"}
    )
    assert consent.status_code == 400
    assert "You were signed out before approving" in consent.text
    assert "gh_session" not in client.cookies

    page = await client.get("/second-factor")
    assert page.status_code == 200
    assert 'name="code"' in page.text


async def test_a_code_signs_in_once_and_a_replay_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    await signed_out(client)
    code = totp.next_code()

    assert (await sign_in(client, email)).headers["location"] == "/second-factor"
    done = await submit_code(client, code)
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    assert client.cookies.get("gh_session")
    assert "gh_2fa" not in client.cookies
    assert (await client.get("/account")).status_code == 200

    await signed_out(client)
    assert (await sign_in(client, email)).headers["location"] == "/second-factor"
    replayed = await submit_code(client, code)
    assert replayed.status_code == 401
    assert "already used" in replayed.text
    assert "gh_session" not in client.cookies
    # The code of enrolment (an earlier step) is refused too.
    assert (await submit_code(client, totp.code(totp.confirmed_step))).status_code == 401

    kinds = [
        e.kind
        for (e,) in await _events(app, email)
        if e.kind.startswith("signin.") and e.detail.get("reason") != "throttled"
    ]
    assert kinds.count("signin.second_factor") == 2
    assert "signin.failure" in kinds


async def _events(app: FastAPI, email: str) -> list[tuple[AuditEvent]]:
    user = await user_by_email(app, email)
    return await db_all(  # type: ignore[return-value]
        app, select(AuditEvent).where(AuditEvent.user_id == user.id).order_by(AuditEvent.at)
    )


async def test_a_recovery_code_signs_in_once(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    await signed_out(client)
    code = totp.recovery_codes[3]

    await sign_in(client, email)
    typed = "  " + code.upper().replace("-", " ") + " "  # as a person might type it
    assert (await submit_code(client, typed)).status_code == 303
    assert (await client.get("/account")).status_code == 200
    assert "9 recovery codes left" in (await client.get(SECURITY)).text

    await signed_out(client)
    await sign_in(client, email)
    again = await submit_code(client, code)
    assert again.status_code == 401
    assert "gh_session" not in client.cookies


async def test_next_survives_the_second_step(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    reg = await register(client)
    auth = Authorization(client_id=reg["client_id"])
    await signed_out(client)

    await sign_in(client, email, next_path=auth.url())
    done = await submit_code(client, totp.next_code())
    assert done.status_code == 303
    assert done.headers["location"] == auth.url()
    consent = await client.get(auth.url())
    assert consent.status_code == 200
    assert 'name="pending"' in consent.text


async def test_the_pending_sign_in_is_single_use(client: httpx.AsyncClient, app: FastAPI) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    await signed_out(client)
    await sign_in(client, email)
    pending = client.cookies["gh_2fa"]
    assert (await submit_code(client, totp.recovery_codes[0])).status_code == 303
    before = len(await sessions_of(app, email))

    await signed_out(client)
    client.cookies.set("gh_2fa", pending)
    reused = await submit_code(client, totp.recovery_codes[1])
    assert reused.status_code == 303
    assert reused.headers["location"].startswith("/sign-in")
    assert "gh_session" not in client.cookies
    assert len(await sessions_of(app, email)) == before


async def test_a_forged_pending_cookie_is_refused(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    await enrol_totp(client)
    await signed_out(client)
    await sign_in(client, email)
    genuine = client.cookies["gh_2fa"]
    body, signature = genuine.split(".")
    client.cookies.set("gh_2fa", body + "." + ("0" if signature[0] != "0" else "1") + signature[1:])
    answer = await client.get("/second-factor")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in")


async def test_turning_off_needs_the_password_and_a_current_code(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    totp = await enrol_totp(client)
    action = SECURITY + "/totp/disable"
    wrong_password = await form_post(
        client, SECURITY, action, {"password": "not the password", "code": totp.next_code()}
    )
    assert wrong_password.status_code == 400
    no_code = await form_post(
        client, SECURITY, action, {"password": PASSWORD, "code": wrong_code(totp.secret)}
    )
    assert no_code.status_code == 400
    assert "On. Signing in asks" in (await client.get(SECURITY)).text

    # The wrong password did not spend the code it came with.
    good = {"password": PASSWORD, "code": totp.next_code()}
    off = await form_post(client, SECURITY, action, good)
    assert off.status_code == 303
    page = await client.get(off.headers["location"])
    assert "Two-factor sign-in with an authenticator app is off." in page.text
    assert "Set up an authenticator app" in page.text


async def test_an_account_without_a_password_cannot_turn_it_off_and_gets_a_page_not_a_500(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """An identity provider's account has an empty password hash: no password turns the factor
    off (a 400 that says what is needed), and nothing is changed."""
    email = await sign_up(client)
    totp = await enrol_totp(client)
    await db_write(app, update(User).where(User.email == email).values(password_hash=""))
    for password in ("", PASSWORD):
        answer = await form_post(
            client, SECURITY, SECURITY + "/totp/disable",
            {"password": password, "code": totp.next_code()},
        )  # fmt: skip
        assert answer.status_code == 400
        assert "Enter your password and a current code" in answer.text
    assert "On. Signing in asks" in (await client.get(SECURITY)).text


async def test_turning_off_counts_each_attempt_before_checking_it(
    backend: Backend, tmp_path: Path
) -> None:
    """Count first, then work: concurrent guesses from one session cannot all pass a check
    made before any of them is counted, so no more are evaluated than the account's limit."""
    settings = make_settings(backend, tmp_path, signin_limit_account="3 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        await sign_up(client)
        totp = await enrol_totp(client)
        token = csrf_from((await client.get(SECURITY)).text)
        guess = {"password": PASSWORD, "code": wrong_code(totp.secret), "csrf_token": token}
        answers = await asyncio.gather(
            *(client.post(SECURITY + "/totp/disable", data=guess) for _ in range(6))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [400, 400, 400, 429, 429, 429], statuses
        assert "On. Signing in asks" in (await client.get(SECURITY)).text


async def test_new_recovery_codes_replace_the_old_ones(client: httpx.AsyncClient) -> None:
    email = await sign_up(client)
    totp = await enrol_totp(client)
    fresh = await form_post(client, SECURITY, SECURITY + "/recovery-codes", {})
    new_codes = codes_on(fresh.text)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(totp.recovery_codes)
    await signed_out(client)

    await sign_in(client, email)
    assert (await submit_code(client, totp.recovery_codes[0])).status_code == 401
    assert (await submit_code(client, new_codes[0])).status_code == 303


async def test_code_failures_count_toward_the_password_lock_out(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="3 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await sign_up(client)
        totp = await enrol_totp(client)
        await signed_out(client)
        await sign_in(client, email)  # the right password spends one of the three
        for _ in range(2):
            assert (await submit_code(client, wrong_code(totp.secret))).status_code == 401
        locked = await submit_code(client, totp.next_code())
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "gh_session" not in client.cookies
        # ...and the password form is locked for this account too: one budget.
        client.cookies.clear()
        assert (await sign_in(client, email)).status_code == 429


@pytest.mark.parametrize("code", ["", "12345", "1234567", "x" * 500])
async def test_malformed_codes_are_refused_plainly(client: httpx.AsyncClient, code: str) -> None:
    email = await sign_up(client)
    await enrol_totp(client)
    await signed_out(client)
    await sign_in(client, email)
    answer = await submit_code(client, code)
    assert answer.status_code == 401
    assert "That code is not right" in answer.text


async def test_an_unreadable_totp_secret_is_our_fault_not_a_wrong_code(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    other = await sign_up(client)
    await enrol_totp(client)
    await signed_out(client)
    email = await sign_up(client)
    totp = await enrol_totp(client)
    await signed_out(client)
    # Another person's sealed secret in this row: the AAD (user id) no longer matches.
    mine = (await user_by_email(app, email)).id
    theirs = (await user_by_email(app, other)).id
    their_row = await db_scalar(app, select(TotpFactor).where(TotpFactor.user_id == theirs))
    await db_write(
        app,
        update(TotpFactor)
        .where(TotpFactor.user_id == mine)
        .values(sealed_secret=their_row.sealed_secret),
    )
    await sign_in(client, email)
    answer = await submit_code(client, totp.next_code())
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) > 0
    assert "Use a recovery code" in answer.text
    assert (await submit_code(client, totp.recovery_codes[0])).status_code == 303
