"""Secrets never leave the process: the one place that redacts spans, events and log lines.

Everything exported (span attributes, span event attributes, span status descriptions, log
lines) passes through `scrub_text` / `scrub_attributes`. They remove, wherever they appear:
- values of sensitive query or form parameters (code, state, tokens, secrets, passwords...);
- anything shaped like one of our tokens (gh_s_, gh_rt_, gh_ac_, gh_cs_), a JWT, a GitHub token,
  a Bearer/Basic credential, an argon2 password hash or a stored token hash (64 hex digits);
- attributes whose name says they hold a secret (authorization, cookie, password, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

SENSITIVE_PARAMS = (
    "code",
    "state",
    "code_verifier",
    "code_challenge",
    "refresh_token",
    "access_token",
    "id_token",
    "token",
    "client_secret",
    "password",
    "current_password",
    "new_password",
    "secret",
    "csrf_token",
    "pending",
    "credential_[a-z0-9_]+",
)
_PARAM = re.compile(r"(?i)(?<![a-z0-9_])(" + "|".join(SENSITIVE_PARAMS) + r")=([^&\s\"',;]*)")
_TOKENS = re.compile(
    r"(?:gh_(?:s|rt|ac|cs)_[A-Za-z0-9_\-]{8,})"  # Gatehouse tokens
    r"|(?:eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*)"  # JWTs
    r"|(?:gh[pousr]_[A-Za-z0-9]{10,})|(?:github_pat_[A-Za-z0-9_]{10,})"  # GitHub tokens
    r"|(?i:(?:bearer|basic)\s+[A-Za-z0-9._~+/\-]+=*)"  # credentials in a header value
    r"|(?:\$argon2(?:id|i|d)\$[A-Za-z0-9$=,+/.]+)"  # password hashes
    r"|(?:(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f]))"  # token hashes (HMAC-SHA256, hex)
)
_SECRET_KEY = re.compile(
    r"(?i)(authorization|cookie|set-cookie|password|secret|token|credential|csrf|session"
    r"|api[_-]?key|x-api-key)"
)
# Attribute names that mention "token" but hold no secret.
_SAFE_KEYS = frozenset({"oauth.token_type", "gatehouse.token.kind", "oauth.token_type_hint"})


def scrub_text(text: str) -> str:
    text = _PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _TOKENS.sub(REDACTED, text)


def _scrub_value(value: object) -> object:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v) for v in value)
    return value


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key not in _SAFE_KEYS and _SECRET_KEY.search(key):
            clean[key] = REDACTED
        else:
            clean[key] = _scrub_value(value)
    return clean
