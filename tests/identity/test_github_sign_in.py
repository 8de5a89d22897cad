"""Sign-in with GitHub (OAuth 2, not OpenID Connect) against a local stand-in for github.com:
the person is GitHub's numeric user id, the email its verified primary address."""

from __future__ import annotations

import secrets

import httpx
from fastapi import FastAPI

from tests.identity.fake_github_oauth import USERS, FakeGitHubOAuth
from tests.identity.stub_idp import s256
from tests.identity.support import begin, callback, identities_for, reason


async def test_github_signs_in_by_user_id_with_the_verified_primary_email(
    idp_app: FastAPI, web: httpx.AsyncClient, fake_github: FakeGitHubOAuth
) -> None:
    started = await begin(web, "github", next_path="/account")
    assert started.params["client_id"] == "Iv1.gatehouse-test"
    assert started.params["code_challenge_method"] == "S256"
    assert started.params["redirect_uri"] == "http://127.0.0.1:8000/sign-in/github/callback"
    response = await callback(web, started, f"code-octo-{secrets.token_hex(4)}")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    [identity] = await identities_for(idp_app, str(USERS["octo"]["id"]))
    assert (identity.provider, identity.email) == ("github", "octo@github-users.example")
    assert identity.issuer == fake_github.url
    sent = fake_github.token_requests[-1]
    assert s256(sent["code_verifier"]) == started.params["code_challenge"]
    page = await web.get("/account")
    assert "GitHub" in page.text
    assert "octo@github-users.example" in page.text


async def test_github_account_with_an_unverified_primary_email_is_refused(
    idp_app: FastAPI, web: httpx.AsyncClient
) -> None:
    started = await begin(web, "github")
    response = await callback(web, started, f"code-unverified-{secrets.token_hex(4)}")
    assert response.status_code == 400
    assert reason(response) == "primary_email_unverified"
    assert "primary email address at GitHub is not verified" in response.text
    assert await identities_for(idp_app, str(USERS["unverified"]["id"])) == []
    assert "gh_session" not in web.cookies


async def test_a_github_code_refused_by_github_is_a_plain_page(
    idp_app: FastAPI, web: httpx.AsyncClient
) -> None:
    started = await begin(web, "github")
    response = await callback(web, started, "code-nobody")
    assert response.status_code == 400
    assert reason(response) == "token_bad_verification_code"
    assert "already used or has expired" in response.text
