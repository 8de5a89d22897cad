"""`private_key_jwt` client authentication: RFC 7523 §2.2 / §3, OIDC Core §9.

The client signs a short-lived JWT with its private key; we check it against the public keys it
registered (`jwks`, `jwks_uri`) or published in its Client ID Metadata Document. Each refusal is
`invalid_client` (RFC 7523 §3.2: "the authorization server [...] MUST return an error response
[...] with the value "invalid_client"").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from datetime import UTC, datetime

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.client_keys import ClientKeys, KeySetProblem
from app.oauth.errors import InvalidClient
from app.oauth.models import ClientAssertion, OAuthClient

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Asymmetric only: no HMAC (a shared secret, which CIMD forbids and we never store in the clear)
# and never `none`.
ALGORITHMS = ("RS256", "ES256", "PS256")
MAX_LIFETIME = 300  # seconds between iat (or now) and exp
LEEWAY = 10  # seconds of clock skew tolerated
MAX_ASSERTION = 8192
MAX_JTI = 256


def assertion_issuer(assertion: str) -> str | None:
    """The unverified `iss` — only to find which client's keys to verify with."""
    if len(assertion) > MAX_ASSERTION:
        raise InvalidClient("the client assertion is too large")
    parts = assertion.split(".")
    if len(parts) != 3:  # noqa: PLR2004 - a JWS compact serialisation has three parts
        raise InvalidClient("the client assertion is not a signed JWT")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidClient("the client assertion is not a signed JWT") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


async def verify_assertion(
    *,
    session: AsyncSession,
    keys: ClientKeys,
    client: OAuthClient,
    assertion: str,
    audiences: frozenset[str],
) -> None:
    """Check the signature, the claims, and spend the `jti`; raises InvalidClient."""
    header = _header(assertion)
    kid = header.get("kid")
    try:
        key_set = await keys.for_client(client, kid if isinstance(kid, str) else None)
    except KeySetProblem as exc:
        raise InvalidClient(str(exc)) from exc
    claims = _verified_claims(assertion, key_set, header["alg"])
    _check_claims(claims, client_id=client.client_id, audiences=audiences)
    await _spend(session, client.client_id, claims)


def _header(assertion: str) -> dict[str, object]:
    try:
        header = jws.extract_compact(assertion.encode()).headers()
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidClient("the client assertion is not a signed JWT") from exc
    # RFC 7523 §3 step 9 and OIDC Core §9: the JWT MUST be digitally signed; we take only these.
    if header.get("alg") not in ALGORITHMS:
        raise InvalidClient(f"client assertions must be signed with {', '.join(ALGORITHMS)}")
    return dict(header)


def _verified_claims(assertion: str, key_set: KeySet, alg: object) -> dict[str, object]:
    try:
        token = jwt.decode(assertion, key_set, algorithms=[str(alg)])
    except JoseError as exc:
        raise InvalidClient("the client assertion is not signed by a key of this client") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidClient("the client assertion could not be verified") from exc
    return dict(token.claims)


def _check_claims(claims: dict[str, object], *, client_id: str, audiences: frozenset[str]) -> None:
    # RFC 7523 §3 steps 1-2 and OIDC Core §9: iss and sub are both the client_id.
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("the client assertion's iss and sub must both be the client_id")
    # Step 3: "The JWT MUST contain an "aud" (audience) claim containing a value that identifies
    # the authorization server as an intended audience" — our issuer or token endpoint URL.
    aud = claims.get("aud")
    named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    if not named & audiences:
        raise InvalidClient("the client assertion's aud must be this server's token endpoint")
    now = time.time()
    # Step 4: "The JWT MUST contain an "exp" (expiration time) claim that limits the time window
    # during which the JWT can be used."
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY <= now:
        raise InvalidClient("the client assertion has expired (or has no exp)")
    iat = claims.get("iat")
    start = iat if isinstance(iat, int | float) else now
    if start > now + LEEWAY or exp - start > MAX_LIFETIME + LEEWAY:
        raise InvalidClient(f"client assertions may live at most {MAX_LIFETIME} seconds")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY:
        raise InvalidClient("the client assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        # OIDC Core §9: jti REQUIRED, "The JWT MUST NOT be reused".
        raise InvalidClient("the client assertion needs a jti")


async def _spend(session: AsyncSession, client_id: str, claims: dict[str, object]) -> None:
    """RFC 7523 §3 step 7: "The authorization server MAY ensure that JWTs are not replayed by
    maintaining the set of used "jti" values for the length of time for which the JWT would be
    considered valid"; OIDC Core §9 says MUST NOT be reused. One primary key across replicas.
    Committed at once, so a request that fails later still spends it."""
    digest = hashlib.sha256(f"{client_id}\n{claims['jti']}".encode()).hexdigest()
    expires_at = datetime.fromtimestamp(float(str(claims["exp"])) + LEEWAY, UTC)
    try:
        async with session.begin_nested():
            session.add(ClientAssertion(jti_hash=digest, expires_at=expires_at))
    except IntegrityError as exc:
        raise InvalidClient("the client assertion was already used (replayed jti)") from exc
    await session.commit()
