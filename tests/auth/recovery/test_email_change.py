"""Changing the address: the current password, a link to the new address, a notice with the time
to the old one; nothing changes until the link is used."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.auth.recovery.conftest import delivered, outbox_of, path_of, token_of
from tests.helpers import (
    PASSWORD,
    csrf_from,
    form_post,
    sign_in,
    sign_up,
    unique_email,
    user_by_email,
)
from tests.mail.smtp_server import Mailbox


async def ask_for_change(
    client: httpx.AsyncClient, new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await form_post(
        client,
        "/account/email",
        "/account/email",
        {"new_email": new_email, "current_password": password},
    )


async def test_a_link_to_the_new_address_changes_it_and_the_old_one_is_told(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    old = await sign_up(client)
    new = unique_email("new")
    asked = await ask_for_change(client, new)
    assert asked.status_code == 200, asked.text
    assert f"We sent a link to {new}" in asked.text

    confirm = await delivered(mail_app, smtp_server, new)
    assert confirm.recipients == (new,)
    assert old in confirm.text
    notice = await delivered(mail_app, smtp_server, old, 2)  # after the verification mail
    assert notice.subject == "A change of your Gatehouse address was requested"
    assert new in notice.text
    assert re.search(r"On \d{4}-\d{2}-\d{2} at \d{2}:\d{2} UTC", notice.text)
    assert "/verify-email" not in notice.text  # the old address gets no link

    # Nothing changes until the link is used.
    assert (await user_by_email(mail_app, old)).email == old
    link = confirm.link("/verify-email")
    page = await client.get(path_of(link))
    assert page.status_code == 200
    assert new in page.text
    assert (await user_by_email(mail_app, old)).email == old

    done = await client.post(
        "/verify-email", data={"token": token_of(link), "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 200, done.text
    assert f"Your address is now {new}" in done.text
    user = await user_by_email(mail_app, new)
    assert user.email_verified_at is not None
    assert (await client.get(path_of(link))).status_code == 410

    client.cookies.delete("gh_session")
    assert (await sign_in(client, old)).status_code == 401
    assert (await sign_in(client, new)).status_code == 303


async def test_the_change_needs_the_current_password_and_a_free_valid_address(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    other = await sign_up(client)
    client.cookies.delete("gh_session")
    mine = await sign_up(client)
    outbox = outbox_of(mail_app)
    await outbox.idle()
    before = outbox.counts["accepted"]
    cases = [
        (unique_email("new"), "wrong password", "The current password is not right."),
        ("not-an-address", PASSWORD, "Enter a valid email address"),
        (mine.upper(), PASSWORD, "That is already your address."),
        (other, PASSWORD, "Another account uses that address."),
    ]
    for new_email, password, error in cases:
        refused = await ask_for_change(client, new_email, password)
        assert refused.status_code == 400
        assert error in refused.text
    await outbox.idle()
    assert outbox.counts["accepted"] == before  # nothing was sent
    assert (await user_by_email(mail_app, mine)).email == mine


async def test_a_newer_request_replaces_the_older_link(
    mail_app: FastAPI, client: httpx.AsyncClient, smtp_server: Mailbox
) -> None:
    await sign_up(client)
    first, second = unique_email("first"), unique_email("second")
    assert (await ask_for_change(client, first)).status_code == 200
    assert (await ask_for_change(client, second)).status_code == 200
    stale = (await delivered(mail_app, smtp_server, first)).link("/verify-email")
    assert (await client.get(path_of(stale))).status_code == 410
    fresh = (await delivered(mail_app, smtp_server, second)).link("/verify-email")
    assert (await client.get(path_of(fresh))).status_code == 200


async def test_the_account_page_links_to_the_change_form(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    account = await client.get("/account")
    assert 'href="/account/email"' in account.text
    form = await client.get("/account/email")
    assert form.status_code == 200
    assert 'name="new_email"' in form.text
    assert 'name="current_password"' in form.text
    assert 'name="csrf_token"' in form.text
