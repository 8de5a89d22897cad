"""Tokens, their hashes, and CSRF: one place for the primitives every feature uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

TOKEN_BYTES = 32  # 256 bits


def new_token(prefix: str = "") -> str:
    """A random 256-bit token, URL-safe, with an optional recognisable prefix (``gh_s_``...)."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(key: bytes, token: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a token under the server key, separated by purpose; hex, 64 chars.

    Only this hash is ever stored: a database leak yields nothing that can be presented.
    """
    return hmac.new(key, f"{purpose}\x00{token}".encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def csrf_token_for(key: bytes, csrf_cookie: str) -> str:
    """The form token that matches a browser's CSRF cookie (signed double submit)."""
    return hash_token(key, csrf_cookie, purpose="csrf")


def csrf_valid(key: bytes, csrf_cookie: str | None, form_token: str | None) -> bool:
    if not csrf_cookie or not form_token:
        return False
    return constant_time_equals(csrf_token_for(key, csrf_cookie), form_token)


def sign_blob(key: bytes, purpose: str, data: dict[str, Any], *, ttl: int) -> str:
    """A tamper-proof, expiring, purpose-bound value for a hidden form field (not encrypted)."""
    body = json.dumps({"d": data, "exp": int(time.time()) + ttl}, separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{encoded}.{hash_token(key, encoded, purpose=purpose)}"


def unsign_blob(key: bytes, purpose: str, value: str) -> dict[str, Any] | None:
    """The data of a sign_blob value, or None if it was altered, expired or made for another use."""
    if not value or len(value) > 16384 or value.count(".") != 1:
        return None
    encoded, signature = value.split(".")
    if not constant_time_equals(hash_token(key, encoded, purpose=purpose), signature):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        return None
    if not isinstance(body, dict) or int(body.get("exp", 0)) < time.time():
        return None
    data = body.get("d")
    return data if isinstance(data, dict) else None
