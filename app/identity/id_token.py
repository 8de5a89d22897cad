"""ID token validation, OpenID Connect Core 1.0 §3.1.3.7 (and §3.1.3.6: the token came from the
token endpoint over TLS, but its signature is still checked, as §3.1.3.7 step 6 allows only for
the default algorithm with the provider's keys)."""

from __future__ import annotations

import base64
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.identity.discovery import TENANT_PLACEHOLDER

# Asymmetric algorithms only: never `none`, never HMAC (an HS256 token "signed" with the
# provider's public key would otherwise verify).
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_TOKEN_LENGTH = 16 * 1024


class IdTokenRejected(Exception):
    """An ID token failed a check. `reason` is a short code for logs and audit (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSigningKey(IdTokenRejected):
    def __init__(self) -> None:
        super().__init__("unknown_key")


@dataclass(frozen=True)
class IdTokenClaims:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str


def token_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before any key is chosen (and trusted for nothing but that)."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise IdTokenRejected("malformed")
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError) as exc:
        raise IdTokenRejected("malformed") from exc
    if not isinstance(header, dict):
        raise IdTokenRejected("malformed")
    return header


def signing_algorithm(header: dict[str, Any], supported: tuple[str, ...]) -> str:
    # §3.1.3.7 step 7: the alg SHOULD be the default RS256 or the one registered; we accept
    # the asymmetric ones the provider lists, and nothing else.
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise IdTokenRejected("algorithm_not_allowed")
    if supported and alg not in supported:
        raise IdTokenRejected("algorithm_not_advertised")
    return alg


def verify_signature(token: str, keys: KeySet, *, alg: str, kid: str | None) -> dict[str, Any]:
    """The claims, if one of the provider's keys (by `kid` when given) signed the token."""
    key_type = KEY_TYPES[alg[:2]]
    candidates = [k for k in keys.keys if k.key_type == key_type and (kid is None or k.kid == kid)]
    if not candidates:
        raise UnknownSigningKey()
    for key in candidates:
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except JoseError:
            continue
        if not isinstance(decoded.claims, dict):
            raise IdTokenRejected("malformed")
        return decoded.claims
    raise IdTokenRejected("bad_signature")


def expected_issuer(metadata_issuer: str, claims: dict[str, Any]) -> str:
    """Entra's multi-tenant issuer is a template; the token's `tid` fills it in."""
    if TENANT_PLACEHOLDER not in metadata_issuer:
        return metadata_issuer
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid or "/" in tid:
        raise IdTokenRejected("wrong_issuer")
    return metadata_issuer.replace(TENANT_PLACEHOLDER, tid)


def check_claims(
    claims: dict[str, Any],
    *,
    metadata_issuer: str,
    client_id: str,
    nonce: str,
    now: float | None = None,
) -> IdTokenClaims:
    """OpenID Connect Core §3.1.3.7, the steps that concern the claims (the signature and its
    algorithm are checked before this)."""
    now = time.time() if now is None else now
    issuer = expected_issuer(metadata_issuer, claims)
    # Step 2: the Issuer Identifier MUST exactly match the value of the iss Claim.
    if claims.get("iss") != issuer:
        raise IdTokenRejected("wrong_issuer")
    _check_audience(claims, client_id)
    _check_times(claims, now)
    # Step 11: the nonce Claim MUST be present and equal to the value sent.
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise IdTokenRejected("wrong_nonce")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise IdTokenRejected("no_subject")
    return IdTokenClaims(
        issuer=issuer,
        subject=subject,
        email=email_claim(claims),
        email_verified=email_verified_claim(claims),
        name=name_claim(claims),
    )


def _check_audience(claims: dict[str, Any], client_id: str) -> None:
    # Step 3: the aud Claim MUST contain the client_id; tokens for other audiences are refused.
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IdTokenRejected("wrong_audience")
    # Steps 4-5: with several audiences there must be an azp, and it must be our client_id.
    azp = claims.get("azp")
    if (len(audiences) > 1 and azp is None) or (azp is not None and azp != client_id):
        raise IdTokenRejected("wrong_authorized_party")


def _number(value: object) -> float | None:
    """A JSON number (never a boolean, which Python counts as an int)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _check_times(claims: dict[str, Any], now: float) -> None:
    # Step 9: the current time MUST be before exp. Step 10: iat must not be in the future.
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or exp + LEEWAY <= now:
        raise IdTokenRejected("expired")
    if iat is None or iat - LEEWAY > now:
        raise IdTokenRejected("issued_in_the_future")


def email_claim(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    return email.strip() if isinstance(email, str) and 3 <= len(email) <= 320 else None


def email_verified_claim(claims: dict[str, Any]) -> bool:
    # Some providers send the string "true". Entra sends no email_verified; its `xms_edov`
    # (email domain owner verified) optional claim says the same.
    value = claims.get("email_verified", claims.get("xms_edov"))
    return value is True or value == "true"


def name_claim(claims: dict[str, Any]) -> str:
    name = claims.get("name") or claims.get("preferred_username") or ""
    return name.strip()[:200] if isinstance(name, str) else ""
