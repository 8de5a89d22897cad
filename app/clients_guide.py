"""How each mainstream MCP client connects to Gatehouse, and what Gatehouse does for its habits.

One list, rendered as the README's client table (tests/test_clients_guide.py keeps the two equal)
and meant for a /connect page later. `{mcp_url}` stands for `PUBLIC_URL` + `/mcp`. The habits are
the ones the clients' issue trackers report; each answer names the setting or behaviour that
handles it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientGuide:
    name: str
    steps: str  # what the person does, exactly
    habits: str  # what the client is known to do
    gatehouse: str  # what Gatehouse does about it


CLIENTS: tuple[ClientGuide, ...] = (
    ClientGuide(
        name="Claude (claude.ai, Claude Desktop)",
        steps=(
            "Settings → Connectors → *Add custom connector*; a name and `{mcp_url}`; leave the "
            "OAuth client ID and secret under *Advanced settings* empty. Needs a public https URL."
        ),
        habits=(
            "Connects from Anthropic's shared egress addresses; registers (sometimes twice per "
            "attempt) with `https://claude.ai/api/mcp/auth_callback`; asks for `scope=claudeai`; "
            "caches tool lists"
        ),
        gatehouse=(
            "Registration limit per address is a flood bound (`REGISTRATION_LIMIT_IP`, 1000/h) "
            "and unused duplicates are evicted oldest first (`REGISTRATION_MAX_UNUSED`); unknown "
            "scopes are dropped, not refused; `/mcp` answers `Cache-Control: no-store`, "
            "`Vary: Authorization`"
        ),
    ),
    ClientGuide(
        name="Claude Code",
        steps=(
            "`claude mcp add --transport http gatehouse {mcp_url}`, then `/mcp` → *Authenticate*"
        ),
        habits=(
            "Adds `offline_access` when the AS metadata lists it; random loopback callback port "
            "(`--callback-port` fixes it); several sessions refresh one token at once"
        ),
        gatehouse=(
            "`offline_access` is listed and accepted; loopback redirect URIs match on any port "
            "(RFC 8252 §7.3); retries inside `REFRESH_REUSE_GRACE` (120 s) get the same pair"
        ),
    ),
    ClientGuide(
        name="ChatGPT",
        steps=(
            "Settings → Apps & Connectors → *Advanced* → developer mode → *Create*; "
            "`{mcp_url}`, authentication *OAuth*"
        ),
        habits=(
            "Identifies itself with a Client ID Metadata Document that names `private_key_jwt` "
            "and a `jwks_uri` (RS256); hosted, shared egress"
        ),
        gatehouse=(
            "Fetches the document and the key set through the SSRF fence, verifies RS256/ES256/"
            "PS256 assertions (one-time `jti`, 5 min lifetime); no registration row until a "
            "person approves"
        ),
    ),
    ClientGuide(
        name="Cursor",
        steps='`~/.cursor/mcp.json`: `{"mcpServers": {"gatehouse": {"url": "{mcp_url}"}}}`',
        habits="Registers `cursor://anysphere.cursor-mcp/oauth/callback`",
        gatehouse="Private-use app schemes (`cursor`, `vscode`, …) are accepted redirect URIs",
    ),
    ClientGuide(
        name="VS Code (Copilot agent mode)",
        steps=(
            '`.vscode/mcp.json`: `{"servers": {"gatehouse": {"type": "http", "url": '
            '"{mcp_url}"}}}`; *Allow* the sign-in prompt'
        ),
        habits=(
            "Registers `http://127.0.0.1:33418/`, `http://127.0.0.1/` and "
            "`https://vscode.dev/redirect`, then may use another port if 33418 is busy; asks "
            "for `openid profile email` with some servers"
        ),
        gatehouse="Loopback redirect URIs match on any port; `openid` and friends are dropped",
    ),
    ClientGuide(
        name="Codex",
        steps=(
            '`~/.codex/config.toml`: `[mcp_servers.gatehouse]` `url = "{mcp_url}"`, then '
            "`codex mcp login gatehouse`"
        ),
        habits="Sends `resource`; several Codex processes share one login and refresh together",
        gatehouse=(
            "`resource` must be `{mcp_url}` (RFC 8707); the refresh grace window returns the "
            "same pair to every process inside it"
        ),
    ),
    ClientGuide(
        name="Goose",
        steps=(
            "*Extensions* → *Add custom extension* → type *Streamable HTTP*, endpoint "
            "`{mcp_url}`; or `goose configure` → *Add Extension* → *Remote Extension "
            "(Streamable HTTP)*"
        ),
        habits=(
            "Starts OAuth on the 401 of `initialize`; registers a loopback callback; re-runs "
            "the flow when a cached grant goes bad"
        ),
        gatehouse=(
            "Every `/mcp` method answers the same 401 challenge first; a re-consent for an "
            "approved client and redirect URI is remembered and not asked again"
        ),
    ),
    ClientGuide(
        name="Windsurf",
        steps=(
            '`~/.codeium/windsurf/mcp_config.json`: `{"mcpServers": {"gatehouse": '
            '{"serverUrl": "{mcp_url}"}}}`'
        ),
        habits="Registers a loopback or `windsurf://` redirect URI",
        gatehouse="Loopback (any port) and app-scheme redirect URIs are accepted",
    ),
    ClientGuide(
        name="mcp-remote (stdio bridge)",
        steps=(
            '`{"command": "npx", "args": ["mcp-remote@0.15.1", "{mcp_url}"]}` in any stdio '
            "client's config; tokens live in `~/.mcp-auth`"
        ),
        habits=(
            "One process per client window, all on one refresh token; a fixed loopback port "
            "(3334 by default)"
        ),
        gatehouse=(
            "Refresh retries inside `REFRESH_REUSE_GRACE` converge on one chain; revoking the "
            "app at `/account/apps` ends every window's access within 5 s"
        ),
    ),
    ClientGuide(
        name="MCP Inspector",
        steps=(
            "`npx @modelcontextprotocol/inspector`; open the printed link; *Transport Type* "
            "Streamable HTTP, URL `{mcp_url}`, *Connect* (or *Open Auth Settings* → *Quick "
            "OAuth Flow*)"
        ),
        habits=(
            "Runs in the browser at `http://localhost:6274`: discovery, registration and token "
            "requests are cross-origin `fetch()`es"
        ),
        gatehouse=(
            "The OAuth endpoints answer CORS for any origin; a deployed (https) `/mcp` does too, "
            "a loopback one only for `ALLOWED_ORIGINS`"
        ),
    ),
)


def markdown_table() -> str:
    """The README's table, with `{mcp_url}` left as the placeholder the README explains."""
    rows = [
        "| client | how to connect | known habits | what Gatehouse does |",
        "|---|---|---|---|",
    ]
    for guide in CLIENTS:
        cells = (guide.name, guide.steps, guide.habits, guide.gatehouse)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
