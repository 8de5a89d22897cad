"""The scopes Gatehouse grants, in plain words for the consent screen."""

from __future__ import annotations

from collections.abc import Collection

BASE_SCOPE = "mcp"
WRITE_SCOPE = "mcp:write"
# The resource's scopes: what the protected resource metadata and the 401 challenge name.
SUPPORTED_SCOPES = (BASE_SCOPE, WRITE_SCOPE)
# OIDC's "ask me for a refresh token" scope. Accepted, never needed: every client registered for
# the refresh_token grant gets refresh tokens (SEP-2207: the AS decides from the client's
# grant_types). MCP 2026-07-28 "Refresh Tokens": "MCP Servers (Protected Resources) SHOULD NOT
# include `offline_access` in `WWW-Authenticate` scope or Protected Resource Metadata
# `scopes_supported`, as refresh tokens are not a resource requirement" — so only the
# authorization server metadata lists it.
OFFLINE_ACCESS = "offline_access"
AUTHORIZATION_SERVER_SCOPES = (*SUPPORTED_SCOPES, OFFLINE_ACCESS)
DESCRIPTIONS = {
    BASE_SCOPE: "Use your tools and read your data through MCP",
    WRITE_SCOPE: "Create, change and delete things with your tools",
}


def parse_scope(value: str | None) -> list[str]:
    """The scopes to grant, in canonical order, always including `mcp`.

    RFC 6749 §3.3: "The authorization server MAY fully or partially ignore the scope requested by
    the client, based on the authorization server policy or the resource owner's instructions."
    So a scope Gatehouse does not know (`openid`, `profile`, `claudeai`, a malformed token) is
    dropped, not refused, and `offline_access` is accepted and grants nothing more. The same
    section: "If the client omits the scope parameter when requesting authorization, the
    authorization server MUST either process the request using a pre-defined default value or
    fail the request"; the default here is `mcp`. "If the issued access token scope is different
    from the one requested by the client, the authorization server MUST include the "scope"
    response parameter" — every token response carries `scope`.
    """
    wanted = set((value or "").split()) | {BASE_SCOPE}
    return [s for s in SUPPORTED_SCOPES if s in wanted]


def names_known_scope(value: str | None) -> bool:
    """Whether `value` names any scope Gatehouse grants (a registration naming only unknown
    scopes, e.g. `openid profile`, is not limited by them)."""
    return any(token in SUPPORTED_SCOPES for token in (value or "").split())


def format_scopes(scopes: Collection[str]) -> str:
    return " ".join(s for s in SUPPORTED_SCOPES if s in scopes)
