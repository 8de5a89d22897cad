"""Talking to an OpenID provider: the authorization request, the code exchange (with the
client's secret or a private_key_jwt assertion), the ID token and, when needed, userinfo.

Upstream tokens live only in this module's local variables: they are never logged, traced,
stored or returned.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt

from app.identity.discovery import OidcDiscovery, ProviderUnavailable, checked_json, get_json
from app.identity.id_token import (
    IdTokenRejected,
    UnknownSigningKey,
    check_claims,
    email_claim,
    email_verified_claim,
    signing_algorithm,
    token_header,
    verify_signature,
)
from app.identity.settings import ProviderConfig, load_private_key

ASSERTION_TTL = 60


class UpstreamRefused(Exception):
    """The provider refused the exchange or did not vouch for the person. `reason` is a code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UpstreamPerson:
    """Who the provider says signed in: (issuer, subject) is the identity."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str


class Upstream(Protocol):
    config: ProviderConfig

    @property
    def available(self) -> bool: ...

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str
    ) -> str: ...

    async def check_response_issuer(self, iss: str | None) -> None: ...

    async def person(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> UpstreamPerson: ...

    async def probe(self) -> list[str]: ...


class OidcUpstream:
    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.discovery = OidcDiscovery(config, http)
        self._http = http

    @property
    def available(self) -> bool:
        return self.discovery.available

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        metadata = await self.discovery.metadata()
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "nonce": nonce,
            # RFC 7636 §4.3: the challenge, and S256 as the method.
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return metadata.authorization_endpoint + separator + urlencode(params)

    async def check_response_issuer(self, iss: str | None) -> None:
        metadata = await self.discovery.metadata()
        # RFC 9207 §2.4: a client that receives `iss` MUST compare it with the issuer it sent
        # the request to; one whose provider advertises the parameter MUST refuse a response
        # without it. Entra's template issuer has no single value to compare with.
        if iss is None:
            if metadata.iss_parameter_supported:
                raise UpstreamRefused("missing_iss")
            return
        if not metadata.is_tenant_template and iss != metadata.issuer:
            raise UpstreamRefused("wrong_iss")

    async def person(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> UpstreamPerson:
        metadata = await self.discovery.metadata()
        tokens = await self._exchange(metadata.token_endpoint, code, redirect_uri, code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise IdTokenRejected("no_id_token")
        claims = await self._verified_claims(id_token, metadata.id_token_algs)
        checked = check_claims(
            claims, metadata_issuer=metadata.issuer, client_id=self.config.client_id, nonce=nonce
        )
        email, verified = checked.email, checked.email_verified
        access_token = tokens.get("access_token")
        if email is None and metadata.userinfo_endpoint and isinstance(access_token, str):
            email, verified = await self._userinfo(
                metadata.userinfo_endpoint, access_token, checked.subject
            )
        return UpstreamPerson(checked.issuer, checked.subject, email, verified, checked.name)

    async def _verified_claims(self, id_token: str, algs: tuple[str, ...]) -> dict[str, Any]:
        header = token_header(id_token)
        alg = signing_algorithm(header, algs)
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        try:
            return verify_signature(id_token, await self.discovery.keys(None), alg=alg, kid=kid)
        except UnknownSigningKey:
            # A key we have not seen: the provider may have rotated. Re-read (rate-limited).
            return verify_signature(id_token, await self.discovery.keys(kid), alg=alg, kid=kid)

    async def _exchange(
        self, token_endpoint: str, code: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if self.config.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: the id and secret form-encoded, then Basic.
            auth = httpx.BasicAuth(
                quote(self.config.client_id, safe=""), quote(self.config.client_secret, safe="")
            )
        elif self.config.client_auth == "client_secret_post":
            form |= {"client_id": self.config.client_id, "client_secret": self.config.client_secret}
        else:
            form |= {
                "client_id": self.config.client_id,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._client_assertion(token_endpoint),
            }
        try:
            response = await self._http.post(
                token_endpoint,
                data=form,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{type(exc).__name__} from the token endpoint") from exc
        if response.status_code in (400, 401):
            raise UpstreamRefused(_oauth_error(response))
        tokens = checked_json(response, "the token endpoint")
        if not isinstance(tokens, dict):
            raise ProviderUnavailable("the token endpoint's answer is not a JSON object")
        return tokens

    def _client_assertion(self, token_endpoint: str) -> str:
        """RFC 7523 §3: iss and sub are the client_id, aud the token endpoint, short-lived."""
        key = load_private_key(self.config.private_key_pem)
        if key is None:  # checked when the settings were read; a bad key is our fault
            raise ProviderUnavailable("the private_key_jwt key cannot be read")
        alg = "RS256" if key.key_type == "RSA" else "ES256"
        header: dict[str, Any] = {"alg": alg}
        if self.config.private_key_id:
            header["kid"] = self.config.private_key_id
        now = int(time.time())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_endpoint,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_TTL,
        }
        return jwt.encode(header, claims, key, algorithms=[alg])

    async def _userinfo(
        self, endpoint: str, access_token: str, subject: str
    ) -> tuple[str | None, bool]:
        info = await get_json(
            self._http, endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        # OIDC Core §5.3.2: the sub in the UserInfo Response MUST be verified to exactly match
        # the sub in the ID Token; if they do not match, the values MUST NOT be used.
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise IdTokenRejected("userinfo_subject_mismatch")
        return email_claim(info), email_verified_claim(info)

    async def probe(self) -> list[str]:
        """What is wrong with this provider, if anything (for `gatehouse providers test`)."""
        try:
            metadata = await self.discovery.metadata()
            keys = await self.discovery.keys(None)
        except ProviderUnavailable as exc:
            return [str(exc)]
        problems = []
        if not keys.keys:
            problems.append("the provider's JWKS has no public signing keys")
        if not {"RS256", "ES256", "PS256", "EdDSA"} & set(metadata.id_token_algs):
            problems.append(
                f"the provider signs ID tokens with {', '.join(metadata.id_token_algs)}: "
                "none is an asymmetric algorithm Gatehouse accepts"
            )
        return problems


def _oauth_error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return f"token_{error}" if isinstance(error, str) and error.isidentifier() else "token_refused"
