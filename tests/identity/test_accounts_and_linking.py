"""Whose account a provider sign-in is: (issuer, sub) decides, never an email. New accounts only
for verified emails when sign-up is open or the domain is allowed; an existing account is linked
only after its password (or being signed in to it); an account keeps one way to sign in."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text, update

from app.audit import AuditEvent
from app.auth.models import User
from app.db import utcnow
from app.identity.models import Identity
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    csrf_from,
    db_all,
    db_scalar,
    db_write,
    sign_in,
    sign_up,
    user_by_email,
)
from tests.identity.conftest import provider_settings
from tests.identity.fake_github_oauth import FakeGitHubOAuth
from tests.identity.stub_idp import StubIdp
from tests.identity.support import begin, callback, identities_for, new_code, reason


def _sub() -> str:
    return "sub-" + uuid.uuid4().hex[:12]


async def _provider_sign_in(
    web: httpx.AsyncClient, stub: StubIdp, *, sub: str, email: str | None, verified: bool = True
) -> httpx.Response:
    started = await begin(web)
    claims = stub.claims(nonce=started.nonce, sub=sub, email=email)
    if email is not None:
        claims["email_verified"] = verified
    code = new_code()
    stub.issue(code, claims)
    return await callback(web, started, code)


async def test_the_same_subject_signs_in_to_the_same_account_whatever_its_email(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    sub = _sub()
    async with client_for(idp_app) as first:
        assert (await _provider_sign_in(first, stub, sub=sub, email=f"{sub}@a.example")).is_redirect
    async with client_for(idp_app) as again:
        response = await _provider_sign_in(again, stub, sub=sub, email=f"{sub}@renamed.example")
        assert response.status_code == 303
        page = await again.get("/account")
    [identity] = await identities_for(idp_app, sub)
    assert identity.email == f"{sub}@renamed.example"  # refreshed, still the same identity
    user = await db_scalar(idp_app, select(User).where(User.id == identity.user_id))
    assert user.email == f"{sub}@a.example"
    assert user.password_hash == ""  # made by the provider: no password
    assert f"{sub}@a.example" in page.text
    assert "Stub ID" in page.text
    assert "(your only way to sign in)" in page.text
    assert "Change password" not in page.text  # there is no password to change


async def test_an_unverified_email_makes_no_account(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    sub = _sub()
    response = await _provider_sign_in(web, stub, sub=sub, email=f"{sub}@x.example", verified=False)
    assert response.status_code == 403
    assert reason(response) == "email_unverified"
    assert await identities_for(idp_app, sub) == []


async def test_userinfo_supplies_the_email_when_the_id_token_has_none(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started, sub, code = await begin(web), _sub(), new_code()
    stub.issue(
        code,
        stub.claims(nonce=started.nonce, sub=sub, email=None),
        userinfo={"sub": sub, "email": f"{sub}@info.example", "email_verified": True},
    )
    assert (await callback(web, started, code)).status_code == 303
    [identity] = await identities_for(idp_app, sub)
    assert identity.email == f"{sub}@info.example"


async def test_userinfo_for_another_subject_is_not_used(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    started, sub, code = await begin(web), _sub(), new_code()
    stub.issue(
        code,
        stub.claims(nonce=started.nonce, sub=sub, email=None),
        userinfo={"sub": "someone-else", "email": "victim@info.example", "email_verified": True},
    )
    response = await callback(web, started, code)
    assert reason(response) == "id_token_userinfo_subject_mismatch"


async def test_an_existing_account_is_linked_only_after_its_password(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    async with client_for(idp_app) as owner:
        email = await sign_up(owner)
    sub = _sub()
    async with client_for(idp_app) as web:
        response = await _provider_sign_in(web, stub, sub=sub, email=email.upper())
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in/stub/link"
        assert "gh_session" not in web.cookies
        assert await identities_for(idp_app, sub) == []
        page = await web.get("/sign-in/stub/link")
        assert email in page.text
        token = csrf_from(page.text)
        wrong = await web.post("/sign-in/stub/link", data={"password": "nope", "csrf_token": token})
        assert wrong.status_code == 401
        assert await identities_for(idp_app, sub) == []
        right = await web.post(
            "/sign-in/stub/link", data={"password": PASSWORD, "csrf_token": token}
        )
        assert right.status_code == 303, right.text
        assert web.cookies.get("gh_session")
    [identity] = await identities_for(idp_app, sub)
    owner_user = await db_scalar(idp_app, select(User).where(User.email == email))
    assert identity.user_id == owner_user.id
    # From now on the provider alone signs this person in to that account.
    async with client_for(idp_app) as later:
        assert (await _provider_sign_in(later, stub, sub=sub, email=email)).status_code == 303


async def test_an_unverified_email_is_never_linked_to_an_existing_account(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    async with client_for(idp_app) as owner:
        email = await sign_up(owner)
    sub = _sub()
    async with client_for(idp_app) as web:
        response = await _provider_sign_in(web, stub, sub=sub, email=email, verified=False)
        assert response.status_code == 403
        assert reason(response) == "link_unverified_email"
        assert (await web.get("/sign-in/stub/link")).status_code == 400
    assert await identities_for(idp_app, sub) == []


async def test_a_signed_in_person_connects_and_disconnects_a_provider(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    sub = _sub()
    async with client_for(idp_app) as web:
        email = await sign_up(web)
        session_before = web.cookies["gh_session"]
        account = await web.get("/account")
        assert 'id="connect-stub"' in account.text
        # Until the address is proved, nobody can add a way in that would outlive the owner
        # taking the account back by email (tests/auth/recovery/test_account_takeback.py).
        refused = await web.post(
            "/account/identities/stub/connect", data={"csrf_token": csrf_from(account.text)}
        )
        assert refused.status_code == 403
        assert "Confirm your address first" in refused.text
        await db_write(
            idp_app, update(User).where(User.email == email).values(email_verified_at=utcnow())
        )
        connect = await web.post(
            "/account/identities/stub/connect", data={"csrf_token": csrf_from(account.text)}
        )
        assert connect.status_code == 303
        nonce = re.search(r"nonce=([^&]+)", connect.headers["location"]).group(1)  # type: ignore[union-attr]
        state = re.search(r"state=([^&]+)", connect.headers["location"]).group(1)  # type: ignore[union-attr]
        code = new_code()
        # Any email: being signed in is the proof, and the identity is the subject.
        stub.issue(code, stub.claims(nonce=nonce, sub=sub, email="other@elsewhere.example"))
        done = await web.get("/sign-in/stub/callback", params={"code": code, "state": state})
        assert done.status_code == 303
        assert done.headers["location"] == "/account"
        assert web.cookies["gh_session"] == session_before  # the same session, still signed in
        [identity] = await identities_for(idp_app, sub)
        account = await web.get("/account")
        assert "other@elsewhere.example" in account.text
        removed = await web.post(
            f"/account/identities/{identity.id}/disconnect",
            data={"csrf_token": csrf_from(account.text)},
        )
        assert removed.status_code == 303
    assert await identities_for(idp_app, sub) == []


async def test_the_last_way_to_sign_in_cannot_be_disconnected(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    sub = _sub()
    async with client_for(idp_app) as web:
        await _provider_sign_in(web, stub, sub=sub, email=f"{sub}@only.example")
        [identity] = await identities_for(idp_app, sub)
        account = await web.get("/account")
        assert f"/account/identities/{identity.id}/disconnect" not in account.text
        response = await web.post(
            f"/account/identities/{identity.id}/disconnect",
            data={"csrf_token": csrf_from(account.text)},
        )
        assert response.status_code == 400
        assert "only way to sign in" in response.text
    assert len(await identities_for(idp_app, sub)) == 1


async def test_a_provider_only_account_has_no_password_to_guess(
    idp_app: FastAPI, web: httpx.AsyncClient, stub: StubIdp
) -> None:
    sub = _sub()
    email = f"{sub}@nopass.example"
    await _provider_sign_in(web, stub, sub=sub, email=email)
    async with client_for(idp_app) as guesser:
        response = await sign_in(guesser, email, password="")
        assert response.status_code == 401
        response = await sign_in(guesser, email, password=PASSWORD)
        assert response.status_code == 401


async def test_closed_sign_up_makes_accounts_only_for_allowed_domains(
    backend: object, stub: StubIdp, fake_github: FakeGitHubOAuth, tmp_path: object
) -> None:
    settings = make_settings(
        backend,  # type: ignore[arg-type]
        tmp_path,  # type: ignore[arg-type]
        allow_signup=False,
        OIDC_STUB_ALLOWED_DOMAINS="corp.example",
        **provider_settings(stub, fake_github),
    )
    async with running_app(settings) as app, client_for(app) as web:
        page = await web.get("/sign-in")
        assert 'id="provider-stub"' in page.text
        assert "Continue with Stub ID" in page.text
        sub = _sub()
        allowed = await _provider_sign_in(web, stub, sub=sub, email=f"{sub}@Corp.Example")
        assert allowed.status_code == 303
        assert len(await identities_for(app, sub)) == 1
    async with running_app(settings) as app, client_for(app) as web:
        sub = _sub()
        refused = await _provider_sign_in(web, stub, sub=sub, email=f"{sub}@elsewhere.example")
        assert refused.status_code == 403
        assert reason(refused) == "domain_not_allowed"
        assert "Ask the administrator" in refused.text
        assert await identities_for(app, sub) == []


async def test_guessing_the_linking_password_is_limited_like_sign_in(
    backend: object, stub: StubIdp, fake_github: FakeGitHubOAuth, tmp_path: object
) -> None:
    settings = make_settings(
        backend,  # type: ignore[arg-type]
        tmp_path,  # type: ignore[arg-type]
        signin_limit_account="2 per 15 minutes",
        **provider_settings(stub, fake_github),
    )
    async with running_app(settings) as app, client_for(app) as web:
        email = await sign_up(web)
        web.cookies.clear()
        sub = _sub()
        assert (await _provider_sign_in(web, stub, sub=sub, email=email)).status_code == 303
        token = csrf_from((await web.get("/sign-in/stub/link")).text)
        for _ in range(2):
            wrong = await web.post(
                "/sign-in/stub/link", data={"password": "x", "csrf_token": token}
            )
            assert wrong.status_code == 401
        right = await web.post(
            "/sign-in/stub/link", data={"password": PASSWORD, "csrf_token": token}
        )
        assert right.status_code == 429
        assert "Too many failed attempts" in right.text
        assert await identities_for(app, sub) == []


async def test_a_double_submitted_link_form_links_once_and_signs_in_both_times(
    idp_app: FastAPI, stub: StubIdp, backend: Backend
) -> None:
    """Two submits of one link form (a double click) can both find the identity absent; the one
    that loses the insert must sign in with the identity the other made, not answer 500.

    On PostgreSQL the race is forced: a SHARE lock on `identities` lets both submits read (no
    identity yet) and holds both inserts until the two are waiting, then lets them go.
    """
    if not backend.is_postgres:
        pytest.skip("the insert race is forced with a PostgreSQL table lock")
    async with client_for(idp_app) as owner:
        email = await sign_up(owner)
    sub = _sub()
    async with client_for(idp_app) as web, idp_app.state.sessionmaker() as gate:
        assert (await _provider_sign_in(web, stub, sub=sub, email=email)).status_code == 303
        form = {
            "password": PASSWORD,
            "csrf_token": csrf_from((await web.get("/sign-in/stub/link")).text),
        }
        await gate.execute(text("LOCK TABLE identities IN SHARE MODE"))
        submits = [asyncio.create_task(web.post("/sign-in/stub/link", data=form)) for _ in "ab"]
        waiting = text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'identities'::regclass"
        )
        for _ in range(500):
            if (await gate.execute(waiting)).scalar_one() == 2:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the two submits never both waited to insert")
        await gate.commit()
        answers = await asyncio.gather(*submits)
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    [identity] = await identities_for(idp_app, sub)
    owner_user = await db_scalar(idp_app, select(User).where(User.email == email))
    assert identity.user_id == owner_user.id


async def test_a_link_form_for_a_sign_in_another_account_took_meanwhile_says_so(
    idp_app: FastAPI, stub: StubIdp
) -> None:
    """Between the link form and its submit, the same provider sign-in was linked to another
    account: the right password links nothing, signs no one in and says why (409)."""
    async with client_for(idp_app) as owner:
        email = await sign_up(owner)
    async with client_for(idp_app) as other:
        other_user = await user_by_email(idp_app, await sign_up(other))
    sub = _sub()
    async with client_for(idp_app) as web:
        assert (await _provider_sign_in(web, stub, sub=sub, email=email)).status_code == 303
        token = csrf_from((await web.get("/sign-in/stub/link")).text)
        await db_write(
            idp_app,
            insert(Identity).values(
                id=uuid.uuid4(),
                user_id=other_user.id,
                provider="stub",
                issuer=stub.issuer,
                subject=sub,
            ),
        )
        answer = await web.post(
            "/sign-in/stub/link", data={"password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 409
        assert "is linked to another account here" in answer.text
        assert "gh_session" not in web.cookies
    [identity] = await identities_for(idp_app, sub)
    assert identity.user_id == other_user.id
    owner_user = await user_by_email(idp_app, email)
    failed = await db_all(
        idp_app, select(AuditEvent).where(AuditEvent.kind == "identity.link_failed")
    )
    assert [(e.user_id, e.detail["reason"]) for (e,) in failed if e.user_id == owner_user.id] == [
        (owner_user.id, "linked_to_another_account")
    ]
