"""RFC 7636: Proof Key for Code Exchange, S256 only."""

from __future__ import annotations

import base64
import hashlib
import re

from app.kit.security import constant_time_equals

# RFC 7636 §4.1: code-verifier = 43*128unreserved; §4.2: the S256 challenge is 43 characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def challenge_is_well_formed(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verifier_matches(verifier: str, challenge: str) -> bool:
    # RFC 7636 §4.6: "If the values are equal, the token endpoint MUST continue processing as
    # normal ... If the values are not equal, an error response indicating "invalid_grant" ...
    # MUST be returned."
    if not _VERIFIER.match(verifier):
        return False
    return constant_time_equals(s256(verifier), challenge)
