"""The JSON answers of the passkey option endpoints (each call stores a challenge row)."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response

from app.auth.mfa import passkeys
from app.config import Settings
from app.kit.web import client_ip
from app.state import services_of


def _json(body: object, status_code: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body),
        status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


async def refusal(request: Request, settings: Settings) -> Response | None:
    """Why no challenge is made now (no valid RP ID; too many from this address), or None.

    Counted per address before any work: every call stores a row until it expires.
    """
    if not passkeys.relying_party(settings).available:
        return _json({"error": passkeys.UNAVAILABLE}, 409)
    limits = services_of(request.app).rate_limits
    verdict = await limits.hit(
        limits.rule(settings.signin_limit_ip), "passkey-options-ip", client_ip(request) or "?"
    )
    if not verdict.allowed:
        return _json(
            {"error": "Too many passkey requests from this address. Try again later."},
            429,
            {"Retry-After": str(verdict.retry_after)},
        )
    return None


def answer(options_json: str) -> Response:
    return Response(
        options_json, media_type="application/json", headers={"Cache-Control": "no-store"}
    )
