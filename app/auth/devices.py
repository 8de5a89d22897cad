"""Device cookies: a browser that has signed in to an account before is known to that account.

OWASP Authentication Cheat Sheet, "Account Lockout": "an attacker can abuse the lockout
mechanism ... to lock out legitimate users" — so a lock-out must not be a switch anyone can flip
for someone else's account. Its companion page ("Slow Down Online Guessing Attacks with Device
Cookies") gives the remedy used here: a browser that has proved it knows the password receives a
signed device cookie; its attempts are counted on their own and are not locked by the failures of
untrusted clients, which are limited per (account, address), per address and per account.

The cookie is signed (app/kit/security.sign_blob), HttpOnly, Secure when the public URL is
https, SameSite=Lax, lives a year, and names each account only by an HMAC of its user id.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import RedirectResponse

from app.config import Settings
from app.kit.security import hash_token, new_token, sign_blob, unsign_blob
from app.kit.web import cookie_name, set_cookie

DEVICE_COOKIE = "gh_device"
DEVICE_TTL = 365 * 24 * 3600
MAX_ACCOUNTS = 8  # accounts one browser remembers; the oldest is forgotten first
_PURPOSE = "device"


def account_tag(settings: Settings, user_id: uuid.UUID) -> str:
    return hash_token(settings.secret_key_bytes, str(user_id), purpose="device-account")[:32]


def _read(request: Request, settings: Settings) -> tuple[str, list[str]]:
    value = request.cookies.get(cookie_name(settings, DEVICE_COOKIE), "")
    data = unsign_blob(settings.secret_key_bytes, _PURPOSE, value) if value else None
    device = data.get("d") if data else None
    accounts = data.get("a") if data else None
    if not isinstance(device, str) or not isinstance(accounts, list):
        return "", []
    return device, [a for a in accounts if isinstance(a, str)][:MAX_ACCOUNTS]


def known_device(request: Request, settings: Settings, user_id: uuid.UUID | None) -> str | None:
    """This browser's device id if it has signed in to this account before, else None."""
    if user_id is None:
        return None
    device, accounts = _read(request, settings)
    return device if device and account_tag(settings, user_id) in accounts else None


def remember_device(
    request: Request, response: RedirectResponse, settings: Settings, user_id: uuid.UUID
) -> None:
    """After a successful sign-in: this browser is now known to this account."""
    device, accounts = _read(request, settings)
    tag = account_tag(settings, user_id)
    accounts = [tag, *(a for a in accounts if a != tag)][:MAX_ACCOUNTS]
    data = {"d": device or new_token()[:22], "a": accounts}
    value = sign_blob(settings.secret_key_bytes, _PURPOSE, data, ttl=DEVICE_TTL)
    set_cookie(response, settings, DEVICE_COOKIE, value, max_age=DEVICE_TTL)
