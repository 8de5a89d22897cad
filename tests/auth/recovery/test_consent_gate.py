"""REQUIRE_VERIFIED_EMAIL: an unverified person signs in but cannot approve a client; the consent
page says why and where to fix it; prompt=none hears interaction_required; a remembered consent
does not slip past the rule; once the address is confirmed, approval works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.auth.models import User
from app.db import utcnow
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import db_write, sign_up, user_by_email
from tests.oauth.flow import Authorization, consent, redirect_params, register


@pytest.fixture(scope="module")
async def strict_app(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend, Path(tmp_path_factory.mktemp("strict")), require_verified_email=True
    )
    async with running_app(settings) as application:
        yield application


async def test_an_unverified_person_cannot_approve_until_the_address_is_confirmed(
    strict_app: FastAPI,
) -> None:
    async with client_for(strict_app) as client:
        email = await sign_up(client)
        registered = await register(client)
        auth = Authorization(client_id=registered["client_id"])

        page = await client.get(auth.url())
        assert page.status_code == 200
        assert 'id="approval-blocked"' in page.text
        assert f"confirm that {email} is your address" in page.text
        assert 'href="/account"' in page.text
        assert 'value="approve"' not in page.text

        # Submitting Approve anyway (a hand-made form) issues nothing.
        refused = await consent(client, page)
        assert refused.status_code == 403
        assert 'id="approval-blocked"' in refused.text
        assert "location" not in refused.headers

        quiet = await client.get(
            Authorization(client_id=registered["client_id"], extra={"prompt": "none"}).url()
        )
        assert redirect_params(quiet)["error"] == "interaction_required"

        user = await user_by_email(strict_app, email)
        await db_write(
            strict_app, update(User).where(User.id == user.id).values(email_verified_at=utcnow())
        )
        page = await client.get(auth.url())
        assert 'id="approval-blocked"' not in page.text
        approved = await consent(client, page)
        assert "code" in redirect_params(approved)


async def test_a_remembered_consent_does_not_slip_past_the_rule(strict_app: FastAPI) -> None:
    async with client_for(strict_app) as client:
        email = await sign_up(client)
        user = await user_by_email(strict_app, email)
        registered = await register(client)
        verified = update(User).where(User.id == user.id)
        await db_write(strict_app, verified.values(email_verified_at=utcnow()))
        first = Authorization(client_id=registered["client_id"])
        assert "code" in redirect_params(await consent(client, await client.get(first.url())))

        # The address changes hands (an email change not yet confirmed, an admin's reset): the
        # consent remembered before must not hand out a code without the page.
        await db_write(strict_app, verified.values(email_verified_at=None))
        again = await client.get(Authorization(client_id=registered["client_id"]).url())
        assert again.status_code == 200
        assert 'id="approval-blocked"' in again.text
