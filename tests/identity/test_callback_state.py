"""The callback belongs to the browser that started the sign-in, is answered once, and says in
plain words what went wrong: another browser's state, no state cookie, a replayed code, the
person cancelling, a provider that is down, a response from another issuer (RFC 9207)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit import AuditEvent
from app.kit.security import sign_blob
from tests.conftest import TEST_SECRET_KEY, Backend, client_for, make_settings, running_app
from tests.helpers import db_all
from tests.identity.conftest import provider_settings
from tests.identity.fake_github_oauth import FakeGitHubOAuth
from tests.identity.stub_idp import StubIdp
from tests.identity.support import (
    assert_replay_refused,
    begin,
    callback,
    identities_for,
    new_code,
    reason,
    refusals,
)


def _issue(stub: StubIdp, nonce: str) -> tuple[str, str]:
    sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
    stub.issue(code, stub.claims(nonce=nonce, sub=sub, email=f"{sub}@stub.example"))
    return sub, code


async def test_a_state_from_another_browser_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    victim = await begin(web)
    sub, code = _issue(stub, victim.nonce)
    async with client_for(idp_app) as attacker:
        await begin(attacker)  # the attacker's browser has its own sign-in in flight
        response = await callback(attacker, victim, code)
    assert response.status_code == 400
    assert reason(response) == "state_mismatch"
    assert "another browser" in response.text
    assert await identities_for(idp_app, sub) == []
    assert not stub.token_requests or stub.token_requests[-1]["form"].get("code") != code


async def test_a_callback_without_the_state_cookie_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    sub, code = _issue(stub, started.nonce)
    async with client_for(idp_app) as stranger:
        response = await callback(stranger, started, code)
    assert response.status_code == 400
    assert reason(response) == "state_missing"
    assert "expired" in response.text


async def test_a_replayed_code_is_refused_even_with_the_state_cookie(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    cookie = web.cookies["gh_oidc"]
    sub, code = _issue(stub, started.nonce)
    first = await callback(web, started, code)
    assert first.status_code == 303
    assert "gh_oidc" not in web.cookies  # the state cookie is gone after its callback
    await assert_replay_refused(idp_app, cookie, started, code)
    assert len(await identities_for(idp_app, sub)) == 1


async def test_a_callback_for_another_providers_path_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    _, code = _issue(stub, started.nonce)
    response = await web.get(
        "/sign-in/github/callback", params={"code": code, "state": started.state}
    )
    assert response.status_code == 400
    assert reason(response) == "state_missing"


async def test_cancelling_at_the_provider_says_so_and_changes_nothing(
    idp_app: FastAPI, web: httpx.AsyncClient
) -> None:
    started = await begin(web, next_path="/account")
    response = await web.get(
        "/sign-in/stub/callback",
        params={"error": "access_denied", "state": started.state, "error_description": "<b>x"},
    )
    assert response.status_code == 200
    assert reason(response) == "cancelled"
    assert "You cancelled signing in with Stub ID" in response.text
    assert "<b>x" not in response.text
    assert 'href="/sign-in?next=%2Faccount"' in response.text
    assert "gh_session" not in web.cookies
    assert await refusals(idp_app, "cancelled")


async def test_a_response_naming_another_issuer_is_refused_rfc9207(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    sub, code = _issue(stub, started.nonce)
    response = await callback(web, started, code, iss="https://mix-up.example")
    assert response.status_code == 400
    assert reason(response) == "wrong_iss"
    assert await identities_for(idp_app, sub) == []


async def test_no_upstream_code_or_token_reaches_the_audit_log(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    sub, code = _issue(stub, started.nonce)
    assert (await callback(web, started, code)).status_code == 303
    events = [str(row[0].detail) for row in await db_all(idp_app, select(AuditEvent))]
    assert not any(code in e or "stub-access-" in e or "eyJ" in e for e in events)
    assert not any(started.state in e for e in events)


async def test_failed_callbacks_are_limited_per_address_before_the_provider_is_asked(
    backend: Backend, stub: StubIdp, fake_github: FakeGitHubOAuth, tmp_path: Path
) -> None:
    settings = make_settings(
        backend,
        tmp_path,
        signin_limit_ip="2 per 15 minutes",
        **provider_settings(stub, fake_github),
    )
    async with running_app(settings) as app, client_for(app, "192.0.2.7") as web:
        for _ in range(2):
            started = await begin(web)
            assert reason(await callback(web, started, "code-unknown")) == "token_invalid_grant"
        asked = len(stub.token_requests)
        started = await begin(web)
        response = await callback(web, started, "code-unknown")
    assert response.status_code == 429
    assert reason(response) == "throttled"
    assert response.headers["retry-after"] == "900"
    assert len(stub.token_requests) == asked


@pytest.mark.parametrize(
    ("trouble", "expected"),
    [({"token_status": 502}, "HTTP 502"), ({"token_delay": 6.0}, "ReadTimeout")],
    ids=["down", "slow"],
)
async def test_a_provider_down_or_slow_at_the_token_endpoint_is_a_plain_503(
    idp_app: FastAPI,
    web: httpx.AsyncClient,
    stub: StubIdp,
    caplog: pytest.LogCaptureFixture,
    trouble: dict[str, Any],
    expected: str,
) -> None:
    started = await begin(web)
    sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
    stub.issue(code, stub.claims(nonce=started.nonce, sub=sub, email=f"{sub}@x.example"), **trouble)
    with caplog.at_level(logging.WARNING, logger="gatehouse.identity"):
        response = await callback(web, started, code)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert reason(response) == "unavailable"
    assert "Stub ID is not answering right now" in response.text
    assert "Traceback" not in response.text
    assert any(expected in r.getMessage() for r in caplog.records)
    assert await identities_for(idp_app, sub) == []


async def test_a_provider_that_advertises_iss_must_send_it_rfc9207(
    backend: Backend, stub: StubIdp, fake_github: FakeGitHubOAuth, tmp_path: Path
) -> None:
    stub.iss_parameter = True  # read by this app's discovery at start-up, then cached
    try:
        settings = make_settings(backend, tmp_path, **provider_settings(stub, fake_github))
        async with running_app(settings) as app, client_for(app) as web:
            started = await begin(web)
            sub, code = _issue(stub, started.nonce)
            missing = await callback(web, started, code)
            assert reason(missing) == "missing_iss"
            started = await begin(web)
            sub, code = _issue(stub, started.nonce)
            sent = await callback(web, started, code, iss=stub.url)
            assert sent.status_code == 303
            assert len(await identities_for(app, sub)) == 1
    finally:
        stub.iss_parameter = False


async def test_an_expired_state_cookie_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web)
    sub, code = _issue(stub, started.nonce)
    # The same sign-in, its cookie made as it would be ten minutes and a second later.
    data = {"p": "stub", "s": started.state, "n": started.nonce, "v": "v" * 64, "x": "", "c": None}
    web.cookies.clear()
    web.cookies.set("gh_oidc", sign_blob(TEST_SECRET_KEY.encode(), "identity-state", data, ttl=-1))
    response = await callback(web, started, code)
    assert response.status_code == 400
    assert reason(response) == "state_missing"
    assert "expired" in response.text
    assert await identities_for(idp_app, sub) == []
