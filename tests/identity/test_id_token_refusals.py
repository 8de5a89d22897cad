"""Every ID token check, pinned: a token that fails one is refused with a page in plain words,
an audit event naming the reason, no account, no identity and no session (OIDC Core §3.1.3.7)."""

from __future__ import annotations

import logging
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.identity import discovery
from tests.identity.stub_idp import StubIdp, s256
from tests.identity.support import begin, callback, identities_for, new_code, reason, refusals


def subject() -> str:
    return "sub-" + uuid.uuid4().hex[:12]


def email() -> str:
    return f"person-{uuid.uuid4().hex[:8]}@stub.example"


async def refused_with(
    app: FastAPI, web: httpx.AsyncClient, stub: StubIdp, expected: str, **mint: object
) -> httpx.Response:
    started = await begin(web)
    sub = subject()
    claims_overrides = mint.pop("claims", {})
    assert isinstance(claims_overrides, dict)
    claims = stub.claims(nonce=started.nonce, sub=sub, email=email()) | claims_overrides
    code = new_code()
    stub.issue(code, claims, **mint)  # type: ignore[arg-type]
    response = await callback(web, started, code)
    assert response.status_code == 400, response.text
    assert reason(response) == f"id_token_{expected}"
    assert "could not be verified" in response.text
    assert "gh_session" not in web.cookies
    assert await identities_for(app, sub) == []
    assert await refusals(app, f"id_token_{expected}")
    return response


async def test_a_good_id_token_signs_a_new_person_in(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started = await begin(web, next_path="/account/apps")
    sub, address = subject(), email()
    code = new_code()
    stub.issue(code, stub.claims(nonce=started.nonce, sub=sub, email=address, name="Pat"))
    response = await callback(web, started, code)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account/apps"
    assert web.cookies.get("gh_session")
    [identity] = await identities_for(idp_app, sub)
    assert (identity.provider, identity.issuer, identity.email) == ("stub", stub.url, address)
    assert identity.email_verified is True
    # PKCE S256 and the client's secret reached the token endpoint.
    sent = stub.token_requests[-1]
    assert started.params["code_challenge_method"] == "S256"
    assert s256(sent["form"]["code_verifier"]) == started.params["code_challenge"]
    assert sent["authorization"].startswith("Basic ")


async def test_wrong_audience_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(idp_app, web, stub, "wrong_audience", claims={"aud": "someone-else"})


async def test_several_audiences_need_our_client_as_azp(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(
        idp_app,
        web,
        stub,
        "wrong_authorized_party",
        claims={"aud": ["gatehouse-test", "another-app"], "azp": "another-app"},
    )


async def test_wrong_issuer_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(idp_app, web, stub, "wrong_issuer", claims={"iss": "https://evil.example"})


async def test_an_expired_id_token_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    past = int(time.time()) - 3600
    await refused_with(idp_app, web, stub, "expired", claims={"iat": past, "exp": past + 300})


async def test_an_id_token_from_the_future_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    later = int(time.time()) + 3600
    await refused_with(
        idp_app, web, stub, "issued_in_the_future", claims={"iat": later, "exp": later + 300}
    )


async def test_a_wrong_nonce_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(idp_app, web, stub, "wrong_nonce", claims={"nonce": "not-the-one-sent"})


async def test_alg_none_is_refused(idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp) -> None:
    await refused_with(idp_app, web, stub, "algorithm_not_allowed", signing="none")


async def test_hmac_signed_with_the_public_key_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(idp_app, web, stub, "algorithm_not_allowed", signing="hmac")


async def test_a_key_the_provider_does_not_publish_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(idp_app, web, stub, "unknown_key", signing="unpublished")


async def test_a_published_kid_with_another_keys_signature_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    await refused_with(
        idp_app, web, stub, "bad_signature", signing="unpublished", header={"kid": "published-1"}
    )


async def test_an_unknown_kid_rereads_the_keys_at_most_once_per_interval(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app and its provider's key cache are shared with earlier tests: an interval that
    # began in one of them could end during the refusals below, and a re-read then is right.
    # An interval longer than the test keeps every refusal inside one.
    monkeypatch.setattr(discovery, "REFRESH_MIN_INTERVAL", 3600.0)
    await refused_with(idp_app, web, stub, "unknown_key", signing="unpublished")
    fetches = stub.jwks_fetches
    for _ in range(3):
        await refused_with(idp_app, web, stub, "unknown_key", signing="unpublished")
    assert stub.jwks_fetches == fetches


async def test_the_refusal_is_logged_with_its_reason_never_the_token(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await refused_with(idp_app, web, stub, "wrong_nonce", claims={"nonce": "x"})
    # Gatehouse's own log lines (the server's access log is scrubbed by app/kit/scrub.py).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gatehouse"))
    assert "refused: wrong_nonce" in logged
    assert "eyJ" not in logged  # no JWT (nor its header)
    assert "code-" not in logged
    assert "stub-access-" not in logged
