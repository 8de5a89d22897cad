"""Sign-up and sign-in: cookies, `next`, passwords, disabled accounts, rehashing, lock-out."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func, select, update

from app.auth.models import User
from app.db import utcnow
from tests.conftest import Backend, client_for, make_settings, missing, running_app
from tests.helpers import (
    PASSWORD,
    db_scalar,
    db_write,
    form_post,
    sessions_of,
    sign_in,
    sign_up,
    unique_email,
    user_by_email,
)

WRONG = "definitely not the password"
ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')
SESSION_MAX_AGE = 30 * 24 * 3600


async def signed_up(client: httpx.AsyncClient, **kwargs: str) -> str:
    """A fresh account, with the client signed out again."""
    email = await sign_up(client, **kwargs)
    client.cookies.delete("gh_session")
    return email


@pytest.fixture(scope="module")
async def account(app: FastAPI) -> str:
    """One account for the tests that only sign in (each sign-up costs an argon2 hash)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=app.state.settings.public_url) as c:
        return await sign_up(c)


# -- the session cookie ----------------------------------------------------------------------------


async def test_sign_in_sets_an_http_only_same_site_lax_session_cookie(
    client: httpx.AsyncClient,
    account: str,
) -> None:
    response = await sign_in(client, account)
    assert response.status_code == 303
    cookie, _device = response.headers.get_list("set-cookie")
    token = client.cookies["gh_session"]
    assert token.startswith("gh_s_")
    assert cookie == (
        f"gh_session={token}; HttpOnly; Max-Age={SESSION_MAX_AGE}; Path=/; SameSite=lax"
    )


async def test_sign_in_under_an_https_public_url_sets_a_secure_host_prefixed_cookie(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, public_url="https://gatehouse.example")
    async with running_app(settings) as app, client_for(app) as client:
        email = await signed_up(client)
        client.cookies.clear()
        response = await sign_in(client, email)
        assert response.status_code == 303
        cookie, device = response.headers.get_list("set-cookie")
        token = client.cookies["__Host-gh_session"]
        assert cookie == (
            f"__Host-gh_session={token}; HttpOnly; Max-Age={SESSION_MAX_AGE}; Path=/; "
            "SameSite=lax; Secure"
        )
        known = client.cookies["__Host-gh_device"]
        assert device == (
            f"__Host-gh_device={known}; HttpOnly; Max-Age={365 * 24 * 3600}; Path=/; "
            "SameSite=lax; Secure"
        )
        assert (await client.get("/account")).status_code == 200


async def test_sign_in_redirects_to_the_account_page_by_default(
    client: httpx.AsyncClient, account: str
) -> None:
    response = await sign_in(client, account)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_sign_in_matches_the_email_case_insensitively(
    client: httpx.AsyncClient, account: str
) -> None:
    response = await sign_in(client, "  " + account.upper() + " ")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


# -- ?next= (no open redirect) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_path", ["/account?notice=profile", "/account/apps", "/consent?x=1&y=%2F"]
)
async def test_sign_in_follows_a_same_origin_relative_next(
    client: httpx.AsyncClient, account: str, next_path: str
) -> None:
    response = await sign_in(client, account, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == next_path


OFF_SITE = [
    "https://evil.example/",
    "//evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "/ok\\..\\evil",
    "javascript:alert(1)",
    "evil.example",
    "/\t/evil.example",
    "/\r\nSet-Cookie: x=1",
]


@pytest.mark.parametrize("next_path", OFF_SITE)
async def test_sign_in_ignores_a_next_that_could_leave_the_site(
    client: httpx.AsyncClient, account: str, next_path: str
) -> None:
    response = await sign_in(client, account, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/"])
async def test_signed_in_visit_to_sign_in_ignores_an_off_site_next(
    client: httpx.AsyncClient, next_path: str
) -> None:
    await sign_up(client)
    response = await client.get("/sign-in", params={"next": next_path})
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_sign_in_page_does_not_carry_an_off_site_next_into_its_form(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/sign-in", params={"next": "https://evil.example/"})
    assert page.status_code == 200
    assert '<input type="hidden" name="next" value="">' in page.text
    assert "evil.example" not in page.text


# -- wrong passwords, unknown and disabled accounts ------------------------------------------------


async def test_wrong_password_is_401_with_an_error_and_no_session(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await signed_up(client)
    before = len(await sessions_of(app, email))
    response = await sign_in(client, email, WRONG)
    assert response.status_code == 401
    assert "That email and password do not match an active account." in response.text
    assert response.headers.get_list("set-cookie") == []
    assert "gh_session" not in client.cookies
    assert len(await sessions_of(app, email)) == before


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient,
    account: str,
) -> None:
    wrong = await sign_in(client, account, WRONG)
    unknown = await sign_in(client, unique_email("nobody"), WRONG)
    assert unknown.status_code == wrong.status_code == 401
    assert (
        ERROR.findall(unknown.text)
        == ERROR.findall(wrong.text)
        == ["That email and password do not match an active account."]
    )


async def test_disabled_user_cannot_sign_in_with_the_right_password(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await signed_up(client)
    await db_write(app, update(User).where(User.email == email).values(disabled_at=utcnow()))
    response = await sign_in(client, email)
    assert response.status_code == 401
    assert "That email and password do not match an active account." in response.text
    assert "gh_session" not in client.cookies
    sessions = await sessions_of(app, email)
    assert len(sessions) == 1  # only the one sign-up made, before the account was disabled


async def test_password_longer_than_1024_characters_never_signs_in(
    client: httpx.AsyncClient,
) -> None:
    longest = "p" * 1024
    email = await signed_up(client, password=longest)
    assert (await sign_in(client, email, longest + "x")).status_code == 401
    assert (await sign_in(client, email, longest)).status_code == 303


# -- sign-up ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["p" * 7, "p" * 1025])
async def test_sign_up_refuses_a_password_outside_8_to_1024_characters(
    app: FastAPI, client: httpx.AsyncClient, password: str
) -> None:
    email = unique_email()
    response = await form_post(
        client, "/sign-up", "/sign-up", {"email": email, "password": password, "name": ""}
    )
    assert response.status_code == 400
    assert "characters for the password" in response.text
    assert (
        await db_scalar(app, select(func.count()).select_from(User).where(User.email == email)) == 0
    )


@pytest.mark.parametrize("password", ["p" * 8, "p" * 1024])
async def test_sign_up_accepts_a_password_of_8_or_1024_characters(
    client: httpx.AsyncClient, password: str
) -> None:
    await sign_up(client, password=password)
    assert (await client.get("/account")).status_code == 200


async def test_sign_up_refuses_an_email_taken_in_another_case(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await signed_up(client)
    response = await form_post(
        client, "/sign-up", "/sign-up", {"email": email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "An account with this email already exists." in response.text
    count = select(func.count()).select_from(User).where(func.lower(User.email) == email)
    assert await db_scalar(app, count) == 1


async def test_sign_up_stores_an_argon2id_hash(app: FastAPI, client: httpx.AsyncClient) -> None:
    email = await signed_up(client)
    user = await user_by_email(app, email)
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


# -- rehash on sign-in -----------------------------------------------------------------------------


async def test_sign_in_rehashes_a_password_stored_with_old_parameters(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await signed_up(client)
    weak = Argon2Hasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    await db_write(app, update(User).where(User.email == email).values(password_hash=weak))

    assert (await sign_in(client, email)).status_code == 303

    stored = (await user_by_email(app, email)).password_hash
    assert stored != weak
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHash((Argon2Hasher(),)).verify(PASSWORD, stored)


async def test_sign_in_keeps_a_hash_whose_parameters_are_current(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = await signed_up(client)
    before = (await user_by_email(app, email)).password_hash
    assert (await sign_in(client, email)).status_code == 303
    assert (await user_by_email(app, email)).password_hash == before


# -- lock-out --------------------------------------------------------------------------------------


def assert_locked(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
    assert "Too many failed attempts." in response.text
    assert response.headers.get_list("set-cookie") == []


async def test_an_account_is_locked_with_429_after_repeated_failures(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="3 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await signed_up(client)
        for _ in range(3):
            assert (await sign_in(client, email, WRONG)).status_code == 401
        locked = await sign_in(client, email)  # even the right password is refused now
        assert_locked(locked)
        assert "gh_session" not in client.cookies
        # The lock is on that account, not on this address.
        other = await signed_up(client)
        assert (await sign_in(client, other)).status_code == 303


async def test_an_account_lock_ignores_the_email_case(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="3 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await signed_up(client)
        for variant in (email, email.upper(), email.title()):
            assert (await sign_in(client, variant, WRONG)).status_code == 401
        assert_locked(await sign_in(client, email))


async def test_a_successful_sign_in_resets_the_account_failure_count(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="3 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await signed_up(client)
        for _ in range(2):
            assert (await sign_in(client, email, WRONG)).status_code == 401
        assert (await sign_in(client, email)).status_code == 303
        client.cookies.delete("gh_session")
        for _ in range(2):
            assert (await sign_in(client, email, WRONG)).status_code == 401
        assert (await sign_in(client, email)).status_code == 303


async def test_an_address_is_locked_with_429_after_failures_across_accounts(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_ip="3 per 15 minutes")
    async with (
        running_app(settings) as app,
        client_for(app, "203.0.113.7") as attacker,
        client_for(app, "203.0.113.8") as neighbour,
    ):
        victim = await signed_up(neighbour)
        for _ in range(3):
            assert (await sign_in(attacker, unique_email("guess"), WRONG)).status_code == 401
        assert_locked(await sign_in(attacker, victim))
        # The lock is on that address: the same account signs in from another one.
        assert (await sign_in(neighbour, victim)).status_code == 303


async def test_a_lock_out_is_shared_by_replicas_through_redis(
    backend: Backend, tmp_path: Path
) -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        missing("Redis", f"start it at redis://127.0.0.1:6379 ({exc})")
    settings = make_settings(
        backend,
        tmp_path,
        redis_url="redis://127.0.0.1:6379/13",
        signin_limit_account="3 per 15 minutes",
    )
    async with (
        running_app(settings) as one,
        running_app(settings) as two,
        client_for(one) as first,
        client_for(two) as second,
    ):
        try:
            email = await signed_up(first)
            first.cookies.clear()  # a browser the account does not know (no device cookie)
            for _ in range(3):
                assert (await sign_in(first, email, WRONG)).status_code == 401
            assert_locked(await sign_in(second, email))
        finally:
            # The app's lifespan leaves the Redis connections open at shutdown (a known gap:
            # app/main.py does not close the rate-limit storage); close them here so the
            # suite's "warnings are errors" does not fail on an unclosed socket later.
            for app in (one, two):
                app.state.rate_limits.storage.bridge.storage.connection_pool.disconnect()


async def test_throttled_attempt_creates_no_session(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, signin_limit_account="1 per 15 minutes")
    async with running_app(settings) as app, client_for(app) as client:
        email = await signed_up(client)
        assert (await sign_in(client, email, WRONG)).status_code == 401
        assert_locked(await sign_in(client, email))
        assert len(await sessions_of(app, email)) == 1  # only the one sign-up made
