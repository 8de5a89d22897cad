"""The second-factor pages: strict headers, our own script only, passkeys refused on IP hosts."""

from __future__ import annotations

import httpx

from tests.auth.mfa.support import SECURITY, enrol_totp
from tests.auth.test_pages import assert_page_headers
from tests.helpers import csrf_from, form_post, sign_in, sign_up


async def test_the_security_and_code_pages_send_the_strict_headers(
    client: httpx.AsyncClient,
) -> None:
    email = await sign_up(client)
    page = await client.get(SECURITY)
    assert_page_headers(page)
    assert '<script src="/static/passkeys.js" defer></script>' in page.text
    await enrol_totp(client)
    client.cookies.clear()
    await sign_in(client, email)
    code_page = await client.get("/second-factor")
    assert code_page.status_code == 200
    assert_page_headers(code_page)


async def test_the_passkey_script_is_served_from_our_origin(client: httpx.AsyncClient) -> None:
    script = await client.get("/static/passkeys.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "navigator.credentials" in script.text


async def test_passkeys_are_refused_on_an_ip_address_public_url(client: httpx.AsyncClient) -> None:
    # The test app's PUBLIC_URL is http://127.0.0.1:8000: no valid RP ID (WebAuthn §5.1.4.1).
    token = csrf_from((await client.get("/sign-in")).text)
    options = await client.post("/passkey-sign-in/options", data={"csrf_token": token})
    assert options.status_code == 409
    assert "PUBLIC_URL" in options.json()["error"]
    await sign_up(client)
    page = await client.get(SECURITY)
    assert 'id="passkeys-unavailable"' in page.text
    assert 'id="passkey-add"' not in page.text
    refused = await form_post(client, SECURITY, SECURITY + "/passkeys/options", {})
    assert refused.status_code == 409


async def test_a_passkey_answer_without_javascript_says_what_to_do(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    answer = await form_post(client, SECURITY, SECURITY + "/passkeys", {"name": "x"})
    assert answer.status_code == 400
    assert "Adding a passkey needs JavaScript" in answer.text


async def test_a_garbled_passkey_sign_in_is_refused_plainly(client: httpx.AsyncClient) -> None:
    answer = await form_post(
        client, "/sign-in", "/passkey-sign-in", {"credential": '{"response": {}}'}
    )
    assert answer.status_code == 401
    assert "The passkey answer was not understood" in answer.text
    assert "gh_session" not in client.cookies
