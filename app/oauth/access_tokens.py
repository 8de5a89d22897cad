"""RFC 9068 access tokens: ES256 JWTs, minted for a grant and verified without a database read."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 §2.1, a media type
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class AccessTokenClaims:
    subject: str
    client_id: str
    scopes: tuple[str, ...]
    grant_id: str
    token_id: str
    audience: str
    issued_at: int
    expires_at: int

    # A verified token's claims are kept and reused (CachingTokenVerifier): what every request
    # reads of them is parsed once per token, not once per request.
    @cached_property
    def ids(self) -> tuple[uuid.UUID, uuid.UUID]:
        """(the user, the grant) as UUIDs; ValueError when either is not one (never cached)."""
        return uuid.UUID(self.subject), uuid.UUID(self.grant_id)

    @cached_property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes)


class InvalidAccessToken(Exception):
    """The token is not one of ours, or no longer valid; the message is safe to return."""


class UnknownKeyId(InvalidAccessToken):
    pass


@dataclass(frozen=True)
class AccessTokenRequest:
    """What an access token says: who, for which client, audience and scopes, from which grant."""

    issuer: str
    audience: str
    subject: str
    client_id: str
    scopes: list[str]
    grant_id: uuid.UUID


def mint(request: AccessTokenRequest, *, kid: str, key: ECKey, ttl: int) -> str:
    """RFC 9068 §2.2: the JWT access token, with `typ` at+jwt and our grant id as `gid`."""
    now = int(time.time())
    claims = {
        "iss": request.issuer,
        "sub": request.subject,
        "aud": request.audience,
        "client_id": request.client_id,
        "scope": " ".join(request.scopes),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "gid": str(request.grant_id),
    }
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def verify_access_token(
    token: str, keyset: KeySet, *, issuer: str, audience: str
) -> AccessTokenClaims:
    _check_header(token, keyset)
    try:
        decoded = jwt.decode(token, keyset, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise InvalidAccessToken("the access token's signature is not valid") from exc
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidAccessToken(_claim_problem(exc)) from exc
    return _claims(claims, audience)


def _check_header(token: str, keyset: KeySet) -> None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidAccessToken("the access token is malformed")
    try:
        header = _header(token)
    except ValueError as exc:
        raise InvalidAccessToken("the access token is malformed") from exc
    # RFC 8725 §3.1: only the algorithm we issue; never "none" or an HMAC confusion.
    if header.get("alg") != ALGORITHM:
        raise InvalidAccessToken("the access token's algorithm is not accepted")
    # RFC 9068 §4: "Resource servers MUST verify that the typ header value is at+jwt".
    if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
        raise InvalidAccessToken("the token is not an access token")
    kid = header.get("kid")
    if not isinstance(kid, str) or not any(key.kid == kid for key in keyset.keys):
        raise UnknownKeyId("the access token was signed by an unknown key")


def _claims(claims: dict[str, Any], audience: str) -> AccessTokenClaims:
    scope = claims.get("scope", "")
    grant_id = claims.get("gid")
    client_id = claims.get("client_id")
    if (
        not isinstance(scope, str)
        or not isinstance(grant_id, str)
        or not isinstance(client_id, str)
    ):
        raise InvalidAccessToken("the access token lacks required claims")
    return AccessTokenClaims(
        subject=str(claims["sub"]),
        client_id=client_id,
        scopes=tuple(scope.split()),
        grant_id=grant_id,
        token_id=str(claims["jti"]),
        audience=audience,
        issued_at=int(claims.get("iat", 0)),
        expires_at=int(claims["exp"]),
    )


def _header(token: str) -> dict[str, Any]:
    encoded = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:  # RecursionError: too deep
        raise ValueError("header is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("header is not an object")
    return value


def _claim_problem(exc: JoseError) -> str:
    name = type(exc).__name__
    if "Expired" in name:
        return "the access token has expired"
    if "InvalidClaim" in name:
        return f"the access token's {getattr(exc, 'claim', 'claims')} claim is not accepted"
    if "MissingClaim" in name:
        return "the access token lacks required claims"
    return "the access token is not valid yet" if "Immature" in name else "the token is invalid"
