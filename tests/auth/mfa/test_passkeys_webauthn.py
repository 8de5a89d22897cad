"""Passkeys checked without a browser, by a software authenticator: registration, sign-in as the
first factor and as the second, single-use challenges, the sign counter (WebAuthn §7.2 step 21),
the origin, user verification, and a passkey of one person never finishing another's sign-in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.mfa.policy import approval_blocker
from tests.auth.mfa.soft_authenticator import SoftAuthenticator, b64url
from tests.auth.mfa.support import SECURITY
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import csrf_from, form_post, sign_in, sign_up, user_by_email

PUBLIC_URL = "http://localhost:8000"  # a host name: an IP address is never an RP ID


@pytest.fixture(scope="module")
async def passkey_app(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    settings = make_settings(backend, tmp_path_factory.mktemp("passkeys"), public_url=PUBLIC_URL)
    async with running_app(settings) as app:
        yield app


@pytest.fixture
async def web(passkey_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(passkey_app) as client:
        yield client


async def options(client: httpx.AsyncClient, page: str, action: str) -> dict[str, Any]:
    token = csrf_from((await client.get(page)).text)
    answer = await client.post(action, data={"csrf_token": token})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return dict(answer.json())


async def add_passkey(client: httpx.AsyncClient, name: str = "Soft key") -> SoftAuthenticator:
    authenticator = SoftAuthenticator(origin=PUBLIC_URL)
    created = authenticator.create(await options(client, SECURITY, SECURITY + "/passkeys/options"))
    added = await form_post(
        client, SECURITY, SECURITY + "/passkeys", {"credential": created, "name": name}
    )
    assert added.status_code == 303, added.text
    return authenticator


async def passkey_sign_in(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, **get: Any
) -> tuple[httpx.Response, str]:
    request = await options(client, "/sign-in", "/passkey-sign-in/options")
    assertion = authenticator.get(request, **get)
    answer = await form_post(client, "/sign-in", "/passkey-sign-in", {"credential": assertion})
    return answer, assertion


async def test_registration_options_name_our_rp_and_ask_for_a_discoverable_passkey(
    web: httpx.AsyncClient,
) -> None:
    await sign_up(web)
    request = await options(web, SECURITY, SECURITY + "/passkeys/options")
    assert request["rp"] == {"id": "localhost", "name": "Gatehouse"}
    assert request["authenticatorSelection"]["residentKey"] == "required"
    assert len(request["challenge"]) >= 43  # 256 bits, base64url
    assert {"type": "public-key", "alg": -7} in request["pubKeyCredParams"]


async def test_a_registered_passkey_signs_in_alone_and_its_answer_works_once(
    web: httpx.AsyncClient,
) -> None:
    email = await sign_up(web)
    authenticator = await add_passkey(web, "Laptop <b>")
    page = await web.get(SECURITY)
    assert "Laptop &lt;b&gt;" in page.text
    web.cookies.clear()

    answer, assertion = await passkey_sign_in(web, authenticator)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"
    assert email in (await web.get("/account")).text

    web.cookies.clear()
    token = csrf_from((await web.get("/sign-in")).text)
    replayed = await web.post(
        "/passkey-sign-in", data={"credential": assertion, "csrf_token": token}
    )
    assert replayed.status_code == 401
    assert "expired or was already used" in replayed.text
    assert "gh_session" not in web.cookies


async def test_a_counter_that_did_not_grow_is_refused(web: httpx.AsyncClient) -> None:
    await sign_up(web)
    authenticator = await add_passkey(web)
    web.cookies.clear()
    assert (await passkey_sign_in(web, authenticator))[0].status_code == 303
    web.cookies.clear()
    # A clone: same key, the counter value already seen.
    cloned, _ = await passkey_sign_in(web, authenticator, bump=False)
    assert cloned.status_code == 401
    assert "could not be verified" in cloned.text
    assert "gh_session" not in web.cookies


async def test_an_answer_made_for_another_origin_is_refused(web: httpx.AsyncClient) -> None:
    await sign_up(web)
    authenticator = await add_passkey(web)
    web.cookies.clear()
    phished, _ = await passkey_sign_in(web, authenticator, origin="http://localhost.evil:8000")
    assert phished.status_code == 401
    assert "could not be verified" in phished.text
    assert "gh_session" not in web.cookies


async def test_signing_in_with_only_a_passkey_needs_user_verification(
    web: httpx.AsyncClient,
) -> None:
    await sign_up(web)
    authenticator = await add_passkey(web)
    authenticator.user_verified = False
    web.cookies.clear()
    refused, _ = await passkey_sign_in(web, authenticator)
    assert refused.status_code == 401
    assert "could not be verified" in refused.text
    assert "gh_session" not in web.cookies


async def test_a_passkey_is_the_second_factor_and_only_for_its_owner(
    passkey_app: FastAPI,
) -> None:
    async with client_for(passkey_app) as alice, client_for(passkey_app) as bob:
        alice_email = await sign_up(alice)
        alice_key = await add_passkey(alice)
        bob_email = await sign_up(bob)
        bob_key = await add_passkey(bob)
        alice.cookies.clear()
        bob.cookies.clear()

        assert (await sign_in(bob, bob_email)).headers["location"] == "/second-factor"
        page = await bob.get("/second-factor")
        assert 'name="code"' not in page.text  # no TOTP: only a passkey can finish
        request = await options(bob, "/second-factor", "/second-factor/passkey/options")
        assert [c["id"] for c in request["allowCredentials"]] == [b64url(bob_key.credential_id)]
        # Alice's passkey, answering Bob's challenge, does not finish Bob's sign-in.
        foreign = alice_key.get(request)
        refused = await form_post(
            bob, "/second-factor", "/second-factor/passkey", {"credential": foreign}
        )
        assert refused.status_code == 401
        assert "gh_session" not in bob.cookies

        assert (await sign_in(alice, alice_email)).headers["location"] == "/second-factor"
        request = await options(alice, "/second-factor", "/second-factor/passkey/options")
        mine = alice_key.get(request)
        done = await form_post(
            alice, "/second-factor", "/second-factor/passkey", {"credential": mine}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/account"
        assert alice.cookies.get("gh_session")


async def test_removing_a_passkey_ends_its_use(web: httpx.AsyncClient) -> None:
    await sign_up(web)
    authenticator = await add_passkey(web)
    page = await web.get(SECURITY)
    start = page.text.index("/account/security/passkeys/") + len("/account/security/passkeys/")
    passkey_id = page.text[start : page.text.index("/delete", start)]
    removed = await form_post(web, SECURITY, f"{SECURITY}/passkeys/{passkey_id}/delete", {})
    assert removed.status_code == 303
    assert "No passkeys yet." in (await web.get(SECURITY)).text
    web.cookies.clear()
    refused, _ = await passkey_sign_in(web, authenticator)
    assert refused.status_code == 401
    assert "not registered here" in refused.text


def test_the_soft_authenticator_builds_what_py_webauthn_parses() -> None:
    # Guard for the helper itself: a malformed fixture would make every refusal above vacuous.
    from webauthn.helpers import parse_authentication_credential_json

    authenticator = SoftAuthenticator(origin=PUBLIC_URL)
    authenticator.user_handle = b"u" * 16
    parsed = parse_authentication_credential_json(
        authenticator.get({"rpId": "localhost", "challenge": "abc"})
    )
    assert json.loads(parsed.response.client_data_json)["origin"] == PUBLIC_URL


async def test_a_passkey_alone_satisfies_require_mfa(
    web: httpx.AsyncClient, passkey_app: FastAPI
) -> None:
    email = await sign_up(web)
    user = await user_by_email(passkey_app, email)
    required = passkey_app.state.settings.model_copy(update={"require_mfa": True})
    async with passkey_app.state.sessionmaker() as session:
        assert await approval_blocker(session, user, required) is not None
    await add_passkey(web)
    async with passkey_app.state.sessionmaker() as session:
        assert await approval_blocker(session, user, required) is None


async def test_passkey_challenges_are_rate_limited_per_address(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(
        backend, tmp_path, public_url=PUBLIC_URL, signin_limit_ip="2 per 15 minutes"
    )
    async with running_app(settings) as app, client_for(app, "10.9.8.7") as client:
        token = csrf_from((await client.get("/sign-in")).text)
        for _ in range(2):
            made = await client.post("/passkey-sign-in/options", data={"csrf_token": token})
            assert made.status_code == 200
        refused = await client.post("/passkey-sign-in/options", data={"csrf_token": token})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many passkey requests" in refused.json()["error"]
