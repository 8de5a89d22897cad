"""OIDC_<NAME>_CLIENT_AUTH=private_key_jwt: the code exchange authenticates with a signed
assertion instead of a secret (RFC 7523 §2.2, §3; OIDC Core §9)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import Backend, client_for, make_settings, running_app
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp
from tests.identity.support import begin, callback, identities_for, new_code


async def test_the_code_exchange_sends_a_signed_client_assertion(
    backend: Backend, stub: StubIdp, tmp_path: Path
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "gatehouse-client-1"})
    settings = make_settings(
        backend,
        tmp_path,
        oidc_providers="pkj",
        OIDC_PKJ_ISSUER=stub.url,
        OIDC_PKJ_CLIENT_ID=stub_idp.CLIENT_ID,
        OIDC_PKJ_CLIENT_AUTH="private_key_jwt",
        OIDC_PKJ_PRIVATE_KEY=key.as_pem(private=True).decode(),
        OIDC_PKJ_PRIVATE_KEY_ID="gatehouse-client-1",
    )
    async with running_app(settings) as app, client_for(app) as web:
        started = await begin(web, "pkj")
        sub, code = "sub-" + uuid.uuid4().hex[:12], new_code()
        stub.issue(code, stub.claims(nonce=started.nonce, sub=sub, email=f"{sub}@pkj.example"))
        assert (await callback(web, started, code)).status_code == 303
        assert len(await identities_for(app, sub)) == 1
    sent = stub.token_requests[-1]
    assert sent["authorization"] is None  # no secret, no Basic
    form = sent["form"]
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertion = jwt.decode(form["client_assertion"], key, algorithms=["RS256"])
    assert assertion.header["kid"] == "gatehouse-client-1"
    claims = assertion.claims
    assert claims["iss"] == claims["sub"] == stub_idp.CLIENT_ID
    assert claims["aud"] == f"{stub.url}/token"
    assert claims["jti"]
    assert 0 < claims["exp"] - time.time() <= 60
