"""Tokens, their hashes, and CSRF: one place for the primitives every feature uses."""

from __future__ import annotations

import hashlib
import hmac
import secrets

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
