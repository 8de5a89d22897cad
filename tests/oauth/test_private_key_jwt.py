"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9): a Client ID Metadata
Document client (as ChatGPT's is) that names private_key_jwt and a jwks_uri, served over real TLS;
registered clients with inline jwks; and every refusal."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import sign_up
from tests.oauth.flow import Authorization, authorize_code, register
from tests.oauth.support import ISSUER, assert_oauth_error
from tests.oauth.tls_server import Certificates, Route, TlsServer, make_certificates

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_ENDPOINT = f"{ISSUER}/token"
REDIRECT_URI = "http://127.0.0.1:33418/callback"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pkjwt-tls"))


@pytest.fixture(scope="module")
async def documents(certs: Certificates) -> AsyncIterator[TlsServer]:
    server = TlsServer(certs)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def app(backend: Backend, certs: Certificates, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        backend, tmp_path, cimd_ca_bundle=str(certs.ca_file), cimd_allow_loopback=True
    )
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "10.79.0.1") as c:
        await sign_up(c)
        yield c


@dataclass
class KeyedClient:
    client_id: str
    key: RSAKey | ECKey
    alg: str

    def assertion(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_ENDPOINT,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        header = {"alg": self.alg, "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])

    def auth(self, assertion: str | None = None) -> dict[str, str]:
        return {
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion or self.assertion(),
        }


_paths = iter(range(1_000_000))


@pytest.fixture
def cimd_client(documents: TlsServer) -> KeyedClient:
    """A metadata document naming private_key_jwt and a jwks_uri, with its RSA key."""
    n = next(_paths)
    key = RSAKey.generate_key(2048, parameters={"kid": f"rsa-{n}", "use": "sig"})
    client_id = documents.url(f"/chatgpt/{n}/metadata.json")
    jwks_uri = documents.url(f"/chatgpt/{n}/jwks.json")
    document = {
        "client_id": client_id,
        "client_name": "ChatGPT-like",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks_uri,
    }
    documents.routes[f"/chatgpt/{n}/metadata.json"] = Route(body=json.dumps(document).encode())
    jwks = {"keys": [key.as_dict(private=False)]}
    documents.routes[f"/chatgpt/{n}/jwks.json"] = Route(body=json.dumps(jwks).encode())
    return KeyedClient(client_id, key, "RS256")


async def code_for(client: httpx.AsyncClient, client_id: str) -> tuple[Authorization, str]:
    auth = Authorization(client_id, redirect_uri=REDIRECT_URI)
    return auth, await authorize_code(client, auth)


async def exchange(
    client: httpx.AsyncClient, auth: Authorization, code: str, credentials: dict[str, str]
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.redirect_uri,
        "code_verifier": auth.verifier,
        **credentials,
    }
    return await client.post("/token", data=data)


async def test_cimd_client_with_a_jwks_uri_completes_the_flow(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    auth, code = await code_for(client, cimd_client.client_id)
    tokens = await exchange(client, auth, code, cimd_client.auth())
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    refreshed = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            **cimd_client.auth(),
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    # /introspect and /revoke take the same authentication.
    introspected = await client.post(
        "/introspect", data={"token": refreshed.json()["access_token"], **cimd_client.auth()}
    )
    assert introspected.json()["active"] is True
    revoked = await client.post(
        "/revoke", data={"token": refreshed.json()["refresh_token"], **cimd_client.auth()}
    )
    assert revoked.status_code == 200


async def test_client_id_may_accompany_the_assertion(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    auth, code = await code_for(client, cimd_client.client_id)
    credentials = {"client_id": cimd_client.client_id, **cimd_client.auth()}
    assert (await exchange(client, auth, code, credentials)).status_code == 200


def _refusals(keyed: KeyedClient) -> dict[str, str]:
    now = int(time.time())
    hmac_key = OctKey.generate_key(256)
    other = RSAKey.generate_key(2048, parameters={"kid": keyed.key.kid})
    unknown = RSAKey.generate_key(2048, parameters={"kid": "not-in-the-set"})
    return {
        "wrong aud": keyed.assertion(aud="https://elsewhere.example/token"),
        "expired": keyed.assertion(iat=now - 400, exp=now - 100),
        "too long-lived": keyed.assertion(exp=now + 3600),
        "no jti": keyed.assertion(jti=None),
        "wrong sub": keyed.assertion(sub="someone-else"),
        "key not in the set (same kid)": KeyedClient(keyed.client_id, other, "RS256").assertion(),
        "key not in the set (unknown kid)": KeyedClient(
            keyed.client_id, unknown, "RS256"
        ).assertion(),
        "HMAC": jwt.encode(
            {"alg": "HS256"},
            {
                "iss": keyed.client_id,
                "sub": keyed.client_id,
                "aud": TOKEN_ENDPOINT,
                "exp": now + 60,
                "jti": "h",
            },
            hmac_key,
        ),
        "none": _unsigned(keyed.client_id, now),
    }


def _unsigned(client_id: str, now: int) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_ENDPOINT, "exp": now + 60}
    return f"{b64({'alg': 'none'})}.{b64(claims | {'jti': 'n'})}."


async def test_each_bad_assertion_is_invalid_client(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    for reason, assertion in _refusals(cimd_client).items():
        auth, code = await code_for(client, cimd_client.client_id)
        response = await exchange(client, auth, code, cimd_client.auth(assertion))
        body = assert_oauth_error(response, 401, "invalid_client")
        assert body.get("error_description"), reason
        # The code was never spent: the right assertion still exchanges it.
        assert (await exchange(client, auth, code, cimd_client.auth())).status_code == 200, reason


async def test_a_replayed_jti_is_refused(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    assertion = cimd_client.assertion()
    auth, code = await code_for(client, cimd_client.client_id)
    assert (await exchange(client, auth, code, cimd_client.auth(assertion))).status_code == 200
    auth, code = await code_for(client, cimd_client.client_id)
    replay = await exchange(client, auth, code, cimd_client.auth(assertion))
    body = assert_oauth_error(replay, 401, "invalid_client")
    assert "already used" in body["error_description"]


async def test_a_jti_is_spent_even_when_the_grant_then_fails(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    assertion = cimd_client.assertion()
    auth, _ = await code_for(client, cimd_client.client_id)
    bad_code = await exchange(client, auth, "not-a-code", cimd_client.auth(assertion))
    assert_oauth_error(bad_code, 400, "invalid_grant")
    auth, code = await code_for(client, cimd_client.client_id)
    assert_oauth_error(
        await exchange(client, auth, code, cimd_client.auth(assertion)), 401, "invalid_client"
    )


async def test_a_secret_or_none_is_refused_for_a_private_key_jwt_client(
    client: httpx.AsyncClient, cimd_client: KeyedClient
) -> None:
    auth, code = await code_for(client, cimd_client.client_id)
    response = await exchange(client, auth, code, {"client_id": cimd_client.client_id})
    body = assert_oauth_error(response, 401, "invalid_client")
    assert "private_key_jwt" in body["error_description"]


async def test_a_new_key_in_the_set_is_found_on_an_unknown_kid(
    client: httpx.AsyncClient, cimd_client: KeyedClient, documents: TlsServer
) -> None:
    auth, code = await code_for(client, cimd_client.client_id)
    assert (await exchange(client, auth, code, cimd_client.auth())).status_code == 200
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
    jwks_path = cimd_client.client_id.split(str(documents.port))[1].replace(
        "metadata.json", "jwks.json"
    )
    keys = [cimd_client.key.as_dict(private=False), rotated.as_dict(private=False)]
    documents.routes[jwks_path] = Route(body=json.dumps({"keys": keys}).encode())
    auth, code = await code_for(client, cimd_client.client_id)
    new = KeyedClient(cimd_client.client_id, rotated, "RS256")
    assert (await exchange(client, auth, code, new.auth())).status_code == 200
    # Another made-up kid right after: refused without another fetch (one refetch per 30 s).
    fetches = sum(1 for r in documents.requests if r.path == jwks_path)
    made_up = RSAKey.generate_key(2048, parameters={"kid": "made-up"})
    auth, code = await code_for(client, cimd_client.client_id)
    forged = KeyedClient(cimd_client.client_id, made_up, "RS256")
    assert_oauth_error(await exchange(client, auth, code, forged.auth()), 401, "invalid_client")
    assert sum(1 for r in documents.requests if r.path == jwks_path) == fetches


@pytest.mark.parametrize(("kind", "alg"), [("RSA", "PS256"), ("EC", "ES256")])
async def test_a_registered_client_with_inline_jwks(
    client: httpx.AsyncClient, kind: str, alg: str
) -> None:
    key: RSAKey | ECKey = (
        RSAKey.generate_key(2048, parameters={"kid": "r"})
        if kind == "RSA"
        else ECKey.generate_key("P-256", parameters={"kid": "e"})
    )
    registered = await register(
        client,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    assert "client_secret" not in registered
    keyed = KeyedClient(registered["client_id"], key, alg)
    auth = Authorization(registered["client_id"])
    code = await authorize_code(client, auth)
    response = await exchange(client, auth, code, keyed.auth(keyed.assertion(aud=ISSUER)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"jwks": {"keys": []}},
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
        {"jwks_uri": "http://keys.example/jwks.json"},
        {"jwks": {"keys": [{"kty": "EC"}]}, "jwks_uri": "https://keys.example/jwks.json"},
    ],
)
async def test_registration_needs_one_usable_key_set(
    client: httpx.AsyncClient, metadata: dict[str, Any]
) -> None:
    body = {
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        **metadata,
    }
    response = await client.post("/register", json=body)
    assert_oauth_error(response, 400, "invalid_client_metadata")
