"""The sign-in journeys in headless Chromium against a real `python -m app serve`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.helpers import PASSWORD, unique_email

pytestmark = pytest.mark.browser


async def fill_sign_up(page: Any, server: LiveServer, email: str, name: str = "") -> None:
    await page.goto(server.url + "/sign-up")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(server.url + "/connect")  # a new account has no app yet
    await page.goto(server.url + "/account")


async def fill_sign_in(page: Any, server: LiveServer, email: str, password: str) -> None:
    await page.goto(server.url + "/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_up_shows_the_account_and_sign_out_ends_it(
    browser: Any, live_server: LiveServer
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    email = unique_email("browser")
    await fill_sign_up(page, live_server, email, name="Ada Lovelace")
    assert await page.locator("#account-email").text_content() == email
    assert await page.locator(".session-row").count() == 1

    await page.get_by_role("button", name="Sign out of Gatehouse", exact=True).click()
    await page.wait_for_url(live_server.url + "/sign-in")
    # The session is gone; the device cookie stays, so this browser remains known to the
    # account (app/auth/devices.py) and is not locked out by others' failures.
    assert sorted(c["name"] for c in await context.cookies()) == ["gh_csrf", "gh_device"]
    await page.goto(live_server.url + "/account")
    assert page.url == live_server.url + "/sign-in?next=%2Faccount"
    await context.close()


async def test_sign_in_lands_on_the_account_page(browser: Any, live_server: LiveServer) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    email = unique_email("browser")
    await fill_sign_up(page, live_server, email)
    await context.clear_cookies()

    await fill_sign_in(page, live_server, email, PASSWORD)
    await page.wait_for_url(live_server.url + "/account")
    assert await page.locator("#account-email").text_content() == email
    (session,) = [c for c in await context.cookies() if c["name"] == "gh_session"]
    assert (session["httpOnly"], session["sameSite"], session["path"]) == (True, "Lax", "/")
    await context.close()


async def test_a_wrong_password_shows_an_error_and_sets_no_session(
    browser: Any, live_server: LiveServer
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    email = unique_email("browser")
    await fill_sign_up(page, live_server, email)
    await context.clear_cookies()

    await fill_sign_in(page, live_server, email, "not the password")
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert await alert.text_content() == "That email and password do not match an active account."
    assert page.url == live_server.url + "/sign-in"
    assert "gh_session" not in [c["name"] for c in await context.cookies()]
    await context.close()


async def test_sign_out_everywhere_else_ends_another_browsers_session(
    browser: Any, live_server: LiveServer
) -> None:
    here = await browser.new_context()
    there = await browser.new_context()
    page = await here.new_page()
    other = await there.new_page()
    email = unique_email("browser")
    await fill_sign_up(page, live_server, email)
    await fill_sign_in(other, live_server, email, PASSWORD)
    await other.wait_for_url(live_server.url + "/account")

    await page.reload()
    assert await page.locator(".session-row").count() == 2
    await page.get_by_role("button", name="Sign out everywhere else").click()
    await page.wait_for_url(live_server.url + "/account?notice=sessions")
    assert await page.locator(".session-row").count() == 1

    await other.reload()
    assert other.url == live_server.url + "/sign-in?next=%2Faccount"
    await page.reload()
    assert page.url == live_server.url + "/account?notice=sessions"
    await here.close()
    await there.close()
