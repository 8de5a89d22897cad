"""A real HTTP server standing in for an OpenID provider whose ID tokens the test chooses.

It publishes discovery metadata and a JWKS with one RSA key, and answers the token endpoint with
an ID token minted, for each code, from what the test registered with `issue()`: any claims, any
header, signed with the published key, a key it does not publish, HMAC, or `alg: none`. Every
token request is logged, so a test can check the PKCE verifier and client authentication that
Gatehouse sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.local_server import serve_asgi

CLIENT_ID = "gatehouse-test"
CLIENT_SECRET = "stub-client-secret-0d9f"  # noqa: S105 - a test value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Issued:
    claims: dict[str, Any]
    signing: str = "published"  # published | unpublished | hmac | none
    header: dict[str, Any] = field(default_factory=dict)
    userinfo: dict[str, Any] | None = None
    token_status: int = 200  # the token endpoint's answer for this code (500: the provider is down)
    token_delay: float = 0.0  # seconds before the token endpoint answers (a slow provider)


@dataclass
class StubIdp:
    url: str = ""
    published: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "published-1"})
    )
    unpublished: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "other-2"})
    )
    iss_parameter: bool = False
    # Entra-style multi-tenant metadata: the issuer names "{tenantid}" (under /<tenant>/v2.0).
    tenant_template: bool = False
    codes: dict[str, Issued] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0
    rotated: list[RSAKey] = field(default_factory=list)  # published after `published`

    def claims(self, *, nonce: str, sub: str, email: str | None, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        }
        if email is not None:
            base |= {"email": email, "email_verified": True}
        return base | extra

    def issue(self, code: str, claims: dict[str, Any], **kwargs: Any) -> None:
        self.codes[code] = Issued(claims, **kwargs)

    def mint(self, issued: Issued) -> str:
        if issued.signing == "none":
            header = b64url(json.dumps({"alg": "none", **issued.header}).encode())
            return f"{header}.{b64url(json.dumps(issued.claims).encode())}."
        if issued.signing == "hmac":
            # "Signed" with the provider's public key as an HMAC secret: the confusion attack.
            secret = OctKey.import_key(json.dumps(self.published.as_dict(private=False)).encode())
            return jwt.encode({"alg": "HS256", **issued.header}, issued.claims, secret)
        key = self.published if issued.signing == "published" else self.unpublished
        header = {"alg": "RS256", "kid": key.kid, **issued.header}
        return jwt.encode(header, issued.claims, key)

    # -- the HTTP surface ----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.url}/{{tenantid}}/v2.0" if self.tenant_template else self.url

    async def metadata(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "id_token_signing_alg_values_supported": ["RS256"],
                "authorization_response_iss_parameter_supported": self.iss_parameter,
            }
        )

    async def jwks(self, request: Request) -> JSONResponse:
        self.jwks_fetches += 1
        keys = [self.published, *self.rotated]
        return JSONResponse({"keys": [key.as_dict(private=False) for key in keys]})

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        self.token_requests.append(
            {"form": form, "authorization": request.headers.get("authorization")}
        )
        issued = self.codes.get(str(form.get("code")))
        if issued is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if issued.token_delay:
            await asyncio.sleep(issued.token_delay)
        if issued.token_status != 200:
            return JSONResponse({"error": "server_error"}, status_code=issued.token_status)
        access_token = "stub-access-" + str(form.get("code"))
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "id_token": self.mint(issued)}
        )

    async def userinfo(self, request: Request) -> JSONResponse:
        code = request.headers.get("authorization", "").removeprefix("Bearer stub-access-")
        issued = self.codes.get(code)
        if issued is None or issued.userinfo is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(issued.userinfo)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.metadata),
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.metadata),
                Route("/jwks", self.jwks),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


@contextmanager
def running_stub(*, tenant_template: bool = False) -> Iterator[StubIdp]:
    idp = StubIdp(tenant_template=tenant_template)
    with serve_asgi(idp.app()) as url:
        idp.url = url
        yield idp
