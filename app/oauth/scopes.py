"""The scopes Gatehouse grants, in plain words for the consent screen."""

from __future__ import annotations

import re
from collections.abc import Collection

from app.oauth.errors import InvalidScope

BASE_SCOPE = "mcp"
WRITE_SCOPE = "mcp:write"
SUPPORTED_SCOPES = (BASE_SCOPE, WRITE_SCOPE)
DESCRIPTIONS = {
    BASE_SCOPE: "Use your tools and read your data through MCP",
    WRITE_SCOPE: "Create, change and delete things with your tools",
}
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(value: str | None) -> list[str]:
    """The requested scopes, in canonical order, always including `mcp`.

    RFC 6749 §3.3: "If the client omits the scope parameter when requesting authorization, the
    authorization server MUST either process the request using a pre-defined default value or
    fail the request"; the default here is `mcp`.
    """
    tokens = (value or "").split(" ") if value else []
    tokens = [t for t in tokens if t]
    for token in tokens:
        if not _SCOPE_TOKEN.match(token) or token not in SUPPORTED_SCOPES:
            shown = token if _SCOPE_TOKEN.match(token) and len(token) <= 64 else "(malformed)"
            raise InvalidScope(
                f"unknown scope {shown}; supported scopes are {' '.join(SUPPORTED_SCOPES)}"
            )
    wanted = set(tokens) | {BASE_SCOPE}
    return [s for s in SUPPORTED_SCOPES if s in wanted]


def format_scopes(scopes: Collection[str]) -> str:
    return " ".join(s for s in SUPPORTED_SCOPES if s in scopes)
