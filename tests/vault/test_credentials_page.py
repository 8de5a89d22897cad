"""/account/credentials and the consent page's credential field: connected status and upstream
login but never the secret; replace; delete; CSRF; rate-limited validation; an invalid token on
the consent page issues nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit import AuditEvent
from app.oauth.models import AuthorizationCode, OAuthGrant
from app.vault.models import Credential
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.connectors.fake_github import FakeGitHub
from tests.connectors.support import (
    Person,
    call_tool,
    connected_person,
    delete_credential,
    error_text,
    github_token,
    replace_credential,
    structured,
    submit_consent,
)
from tests.helpers import db_all, db_scalar, sign_up, user_by_email
from tests.oauth.flow import Authorization, register


@pytest.fixture
async def alice(github_app: FastAPI) -> AsyncIterator[Person]:
    async with client_for(github_app) as web:
        yield await connected_person(github_app, web, "alice")


async def credential_of(app: FastAPI, person: Person) -> Credential | None:
    return await db_scalar(app, select(Credential).where(Credential.user_id == person.user_id))  # type: ignore[no-any-return]


async def test_page_shows_connected_account_but_never_the_secret(alice: Person) -> None:
    page = await alice.web.get("/account/credentials")
    assert page.status_code == 200
    assert 'id="credential-github"' in page.text
    assert 'Connected as <strong class="account">alice</strong>' in page.text
    assert "Disconnect and delete" in page.text
    assert alice.github_token not in page.text
    assert alice.github_token[-12:] not in page.text


async def test_replace_uses_the_new_credential_and_shows_its_account(
    github_app: FastAPI, alice: Person
) -> None:
    old = await credential_of(github_app, alice)
    assert old is not None
    new_token = github_token("alicia")
    response = await replace_credential(alice.web, new_token)
    assert response.status_code == 303
    assert response.headers["location"] == "/account/credentials?notice=connected"
    page = await alice.web.get(response.headers["location"])
    assert 'Connected as <strong class="account">alicia</strong>' in page.text
    assert new_token not in page.text
    assert alice.github_token not in page.text
    new = await credential_of(github_app, alice)
    assert new is not None
    assert new.id == old.id  # replaced in place: one credential per connector
    assert new.generation != old.generation
    assert new.sealed != old.sealed
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me["login"] == "alicia"


async def test_an_invalid_replacement_keeps_the_old_credential(
    github_app: FastAPI, alice: Person, fake_github: FakeGitHub
) -> None:
    before = await credential_of(github_app, alice)
    bad = "ghp_expired_" + alice.github_token[-12:]
    response = await replace_credential(alice.web, bad)
    assert response.status_code == 400
    assert "GitHub did not accept that GitHub personal access token" in response.text
    assert bad not in response.text
    assert len(fake_github.requests(bad)) == 1
    after = await credential_of(github_app, alice)
    assert after is not None
    assert before is not None
    assert (after.sealed, after.generation) == (before.sealed, before.generation)
    me = structured(await call_tool(alice.web, alice.access_token, "github_whoami"))
    assert me["login"] == "alice"


@pytest.mark.parametrize("value", ["", "   ", "two words", "x" * 5000])
async def test_malformed_secrets_are_refused_without_calling_upstream(
    alice: Person, fake_github: FakeGitHub, value: str
) -> None:
    seen = len(fake_github.requests())
    response = await replace_credential(alice.web, value)
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert len(fake_github.requests()) == seen


async def test_delete_removes_the_credential_and_tools_ask_to_reconnect(
    github_app: FastAPI, alice: Person
) -> None:
    response = await delete_credential(alice.web)
    assert response.status_code == 303
    assert response.headers["location"] == "/account/credentials?notice=deleted"
    assert await credential_of(github_app, alice) is None
    page = await alice.web.get("/account/credentials")
    assert "Not connected" in page.text
    text = error_text(await call_tool(alice.web, alice.access_token, "github_list_repos"))
    assert "Connect one at http://127.0.0.1:8000/account/credentials" in text
    kinds = await db_all(
        github_app, select(AuditEvent.kind).where(AuditEvent.user_id == alice.user_id)
    )
    assert {"credential.created", "credential.deleted"} <= {k for (k,) in kinds}
    # Deleting again: nothing is connected.
    assert (await delete_credential(alice.web)).status_code == 404


async def test_unknown_connector_is_404(alice: Person) -> None:
    page = await alice.web.get("/account/credentials")
    from tests.helpers import csrf_from

    token = csrf_from(page.text)
    response = await alice.web.post(
        "/account/credentials/gitlab", data={"secret": "x", "csrf_token": token}
    )
    assert response.status_code == 404


async def test_posts_without_a_valid_csrf_token_change_nothing(
    github_app: FastAPI, alice: Person, fake_github: FakeGitHub
) -> None:
    before = await credential_of(github_app, alice)
    new_token = github_token("mallory")
    for data in ({"secret": new_token}, {"secret": new_token, "csrf_token": "forged"}):
        response = await alice.web.post("/account/credentials/github", data=data)
        assert response.status_code == 403
        response = await alice.web.post("/account/credentials/github/delete", data=data)
        assert response.status_code == 403
    after = await credential_of(github_app, alice)
    assert after is not None
    assert before is not None
    assert after.generation == before.generation
    assert fake_github.requests(new_token) == []


async def test_signed_out_visitors_are_sent_to_sign_in(github_app: FastAPI) -> None:
    async with client_for(github_app) as web:
        response = await web.get("/account/credentials")
    assert response.status_code in (302, 303)
    assert "/sign-in" in response.headers["location"]


async def test_validation_attempts_are_rate_limited_per_user(
    backend: Backend, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    settings = make_settings(
        backend,
        tmp_path,
        connectors=["github"],
        github_api_url=fake_github.url,
        credential_limit_user="2 per hour",
    )
    async with running_app(settings) as app, client_for(app) as web:
        await sign_up(web)
        for _ in range(2):
            response = await replace_credential(web, "ghp_expired_" + github_token("x")[-12:])
            assert response.status_code == 400
            assert "did not accept" in response.text
        third = github_token("alice")
        response = await replace_credential(web, third)
        assert response.status_code == 400
        assert "Too many attempts to connect a credential" in response.text
        assert fake_github.requests(third) == []  # refused before reaching the upstream


async def test_validation_attempts_are_rate_limited_per_ip(
    backend: Backend, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    settings = make_settings(
        backend,
        tmp_path,
        connectors=["github"],
        github_api_url=fake_github.url,
        credential_limit_ip="2 per hour",
    )
    async with running_app(settings) as app:
        for attempt in range(3):
            async with client_for(app, "203.0.113.9") as web:
                await sign_up(web)
                token = github_token("alice")
                response = await replace_credential(web, token)
            if attempt < 2:
                assert response.status_code == 303
            else:
                assert response.status_code == 400
                assert "Too many attempts" in response.text
                assert fake_github.requests(token) == []


async def test_invalid_token_on_consent_shows_the_form_again_and_issues_nothing(
    github_app: FastAPI, fake_github: FakeGitHub
) -> None:
    async with client_for(github_app) as web:
        email = await sign_up(web)
        user = await user_by_email(github_app, email)
        registered = await register(web)
        auth = Authorization(registered["client_id"])
        page = await web.get(auth.url())
        assert page.status_code == 200
        assert 'id="credential-github"' in page.text
        assert 'type="password"' in page.text
        bad = "ghp_expired_" + github_token("x")[-12:]
        again = await submit_consent(web, page, credential=bad)
        assert again.status_code == 400
        assert "GitHub did not accept that GitHub personal access token" in again.text
        assert 'id="credential-github"' in again.text
        assert bad not in again.text
        assert len(fake_github.requests(bad)) == 1

        async def count(model: type) -> int:
            return int(
                await db_scalar(
                    github_app,
                    select(func.count()).select_from(model).where(model.user_id == user.id),  # type: ignore[attr-defined]
                )
            )

        async def codes() -> int:
            stmt = (
                select(func.count())
                .select_from(AuthorizationCode)
                .join(OAuthGrant, AuthorizationCode.grant_id == OAuthGrant.id)
                .where(OAuthGrant.user_id == user.id)
            )
            return int(await db_scalar(github_app, stmt))

        assert await count(OAuthGrant) == 0
        assert await codes() == 0
        assert await count(Credential) == 0

        # The re-rendered form still works: deny goes back to the client with access_denied.
        denied = await submit_consent(web, again, action="deny")
        assert denied.status_code == 303
        assert "error=access_denied" in denied.headers["location"]
        assert "code=" not in denied.headers["location"]
        assert await count(OAuthGrant) == 0

        # And a good token on a fresh request connects it and approves.
        page = await web.get(Authorization(registered["client_id"]).url())
        good = github_token("alice")
        approved = await submit_consent(web, page, credential=good)
        assert approved.status_code in (302, 303)
        assert "code=" in approved.headers["location"]
        assert await count(Credential) == 1
        assert await count(OAuthGrant) == 1

        # Connected now: the next consent page does not ask again.
        page = await web.get(Authorization(registered["client_id"]).url())
        assert page.status_code in (200, 302, 303)
        assert 'name="credential_github"' not in page.text
