"""Microsoft Entra ID's multi-tenant metadata names its issuer as a template,
`https://login.microsoftonline.com/{tenantid}/v2.0`; each ID token's `iss` must be that template
filled with the token's own `tid`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Backend, client_for, make_settings, running_app
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp
from tests.identity.support import begin, callback, identities_for, new_code, reason

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@pytest.fixture(scope="module")
def entra() -> Iterator[StubIdp]:
    with stub_idp.running_stub(tenant_template=True) as idp:
        yield idp


@pytest.fixture(scope="module")
async def entra_app(
    backend: Backend, entra: StubIdp, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend,
        tmp_path_factory.mktemp("entra"),
        oidc_providers="entra",
        OIDC_ENTRA_ISSUER=f"{entra.url}/common/v2.0",
        OIDC_ENTRA_CLIENT_ID=stub_idp.CLIENT_ID,
        OIDC_ENTRA_CLIENT_SECRET=stub_idp.CLIENT_SECRET,
    )
    async with running_app(settings) as application:
        yield application


async def _sign_in(app: FastAPI, entra: StubIdp, **claims: object) -> tuple[str, httpx.Response]:
    async with client_for(app) as web:
        started = await begin(web, "entra")
        sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
        base = entra.claims(nonce=started.nonce, sub=sub, email=None)
        entra.issue(code, base | {"email": f"{sub}@contoso.example", "xms_edov": True} | claims)
        return sub, await callback(web, started, code)


async def test_the_tokens_tenant_fills_in_the_issuer_template(
    entra_app: FastAPI, entra: StubIdp
) -> None:
    sub, response = await _sign_in(entra_app, entra, tid=TENANT, iss=f"{entra.url}/{TENANT}/v2.0")
    assert response.status_code == 303, response.text
    [identity] = await identities_for(entra_app, sub)
    assert identity.issuer == f"{entra.url}/{TENANT}/v2.0"
    assert identity.email_verified is True  # from xms_edov: Entra sends no email_verified


async def test_an_iss_for_another_tenant_than_tid_is_refused(
    entra_app: FastAPI, entra: StubIdp
) -> None:
    other = "00000000-0000-0000-0000-000000000001"
    sub, response = await _sign_in(entra_app, entra, tid=TENANT, iss=f"{entra.url}/{other}/v2.0")
    assert reason(response) == "id_token_wrong_issuer"
    assert await identities_for(entra_app, sub) == []


async def test_a_token_without_tid_is_refused(entra_app: FastAPI, entra: StubIdp) -> None:
    sub, response = await _sign_in(entra_app, entra, iss=f"{entra.url}/{TENANT}/v2.0")
    assert reason(response) == "id_token_wrong_issuer"
