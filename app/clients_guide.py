"""How each mainstream MCP client connects to Gatehouse, and what Gatehouse does for its habits.

One list, the only one: the README's client table (`markdown_table`, kept equal to the README by
tests/test_clients_guide.py) and the steps on `/connect` (`for_page`, with the deployment's MCP
URL filled in) both render from CLIENTS. `{mcp_url}` stands for `PUBLIC_URL` + `/mcp`. Steps mark
`code` and *a label in the client's own screens* the way Markdown does; the page turns the marks
into <code> and <em>. The habits are the ones the clients' issue trackers report; each answer
names the setting or behaviour that handles it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MCP_URL = "{mcp_url}"


@dataclass(frozen=True)
class Client:
    key: str  # a stable anchor: /connect#cursor
    name: str
    steps: tuple[str, ...]  # what the person does, exactly, in order
    habits: str  # what the client is known to do
    gatehouse: str  # what Gatehouse does about it
    snippet: str = ""  # a configuration file's content, shown with the first step
    note: str = ""  # what the person must know before starting
    featured: bool = True  # /connect shows it in full; the others are folded under "More clients"
    hosted: bool = False  # connects from its maker's cloud: needs a public https MCP URL


CLIENTS: tuple[Client, ...] = (
    Client(
        key="claude",
        name="Claude (claude.ai, Claude Desktop)",
        steps=(
            "Open Settings → Connectors and choose *Add custom connector*.",
            "Enter a name and the MCP URL `{mcp_url}`; leave the OAuth client ID and secret "
            "under *Advanced settings* empty.",
            "Choose *Connect*, then sign in and approve.",
        ),
        note="Claude connects from Anthropic's cloud: the URL must be a public https address.",
        hosted=True,
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
    Client(
        key="claude-code",
        name="Claude Code",
        steps=(
            "Run `claude mcp add --transport http gatehouse {mcp_url}`.",
            "In Claude Code, run `/mcp`, choose gatehouse → *Authenticate*, sign in and approve.",
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
    Client(
        key="chatgpt",
        name="ChatGPT",
        steps=(
            "Open Settings → Apps & Connectors → *Advanced* and turn on developer mode.",
            "Choose *Create*, enter a name and the MCP URL `{mcp_url}`, authentication *OAuth*.",
            "Choose *Create*, then sign in and approve.",
        ),
        note="ChatGPT connects from OpenAI's cloud: the URL must be a public https address.",
        hosted=True,
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
    Client(
        key="cursor",
        name="Cursor",
        steps=(
            "Add this to `~/.cursor/mcp.json` (or `.cursor/mcp.json` in one project):",
            "Open Cursor Settings → MCP, choose *Connect* next to gatehouse, sign in and approve.",
        ),
        snippet='{\n  "mcpServers": {\n    "gatehouse": { "url": "{mcp_url}" }\n  }\n}',
        habits="Registers `cursor://anysphere.cursor-mcp/oauth/callback`",
        gatehouse="Private-use app schemes (`cursor`, `vscode`, …) are accepted redirect URIs",
    ),
    Client(
        key="vscode",
        name="VS Code (Copilot agent mode)",
        steps=(
            "Add this to `.vscode/mcp.json` (or run *MCP: Open User Configuration*):",
            "Choose *Start* above the server, *Allow* the sign-in prompt, then sign in and "
            "approve.",
        ),
        snippet=(
            '{\n  "servers": {\n    "gatehouse": { "type": "http", "url": "{mcp_url}" }\n  }\n}'
        ),
        habits=(
            "Registers `http://127.0.0.1:33418/`, `http://127.0.0.1/` and "
            "`https://vscode.dev/redirect`, then may use another port if 33418 is busy; asks "
            "for `openid profile email` with some servers"
        ),
        gatehouse="Loopback redirect URIs match on any port; `openid` and friends are dropped",
    ),
    Client(
        key="codex",
        name="Codex",
        steps=(
            "Add this to `~/.codex/config.toml`:",
            "Run `codex mcp login gatehouse`, then sign in and approve.",
        ),
        snippet='[mcp_servers.gatehouse]\nurl = "{mcp_url}"',
        featured=False,
        habits="Sends `resource`; several Codex processes share one login and refresh together",
        gatehouse=(
            "`resource` must be `{mcp_url}` (RFC 8707); the refresh grace window returns the "
            "same pair to every process inside it"
        ),
    ),
    Client(
        key="goose",
        name="Goose",
        steps=(
            "Choose *Extensions* → *Add custom extension* → type *Streamable HTTP*, endpoint "
            "`{mcp_url}`; or run `goose configure` → *Add Extension* → *Remote Extension "
            "(Streamable HTTP)*.",
            "When Goose opens the browser, sign in and approve.",
        ),
        featured=False,
        habits=(
            "Starts OAuth on the 401 of `initialize`; registers a loopback callback; re-runs "
            "the flow when a cached grant goes bad"
        ),
        gatehouse=(
            "Every `/mcp` method answers the same 401 challenge first; a re-consent for an "
            "approved client and redirect URI is remembered and not asked again"
        ),
    ),
    Client(
        key="windsurf",
        name="Windsurf",
        steps=(
            "Add this to `~/.codeium/windsurf/mcp_config.json`:",
            "When Windsurf opens the browser, sign in and approve.",
        ),
        snippet='{\n  "mcpServers": {\n    "gatehouse": { "serverUrl": "{mcp_url}" }\n  }\n}',
        featured=False,
        habits="Registers a loopback or `windsurf://` redirect URI",
        gatehouse="Loopback (any port) and app-scheme redirect URIs are accepted",
    ),
    Client(
        key="mcp-remote",
        name="mcp-remote (stdio bridge)",
        steps=(
            "Add this to any stdio client's configuration (tokens live in `~/.mcp-auth`):",
            "When mcp-remote opens the browser, sign in and approve.",
        ),
        snippet='{ "command": "npx", "args": ["mcp-remote@0.15.1", "{mcp_url}"] }',
        featured=False,
        habits=(
            "One process per client window, all on one refresh token; a fixed loopback port "
            "(3334 by default)"
        ),
        gatehouse=(
            "Refresh retries inside `REFRESH_REUSE_GRACE` converge on one chain; revoking the "
            "app at `/account/apps` ends every window's access within 5 s"
        ),
    ),
    Client(
        key="inspector",
        name="MCP Inspector",
        steps=(
            "Run `npx @modelcontextprotocol/inspector` and open the link it prints.",
            "Choose *Transport Type* Streamable HTTP, enter `{mcp_url}` and choose *Connect* "
            "(or *Open Auth Settings* → *Quick OAuth Flow*).",
            "On the sign-in prompt, sign in and approve.",
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


# -- the README -----------------------------------------------------------------------------------


def how_to_connect(client: Client) -> str:
    """The README's "how to connect" cell: the steps in one line, the snippet inline after the
    first, then the note."""
    first, *rest = client.steps
    if client.snippet:
        first += " `" + " ".join(line.strip() for line in client.snippet.splitlines()) + "`."
    return " ".join([first, *rest, *([client.note] if client.note else [])])


def markdown_table() -> str:
    """The README's table, with `{mcp_url}` left as the placeholder the README explains."""
    rows = [
        "| client | how to connect | known habits | what Gatehouse does |",
        "|---|---|---|---|",
    ]
    for client in CLIENTS:
        cells = (client.name, how_to_connect(client), client.habits, client.gatehouse)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


# -- /connect -------------------------------------------------------------------------------------

Segment = tuple[str, str]  # ("text" | "code" | "em", the text): the template escapes each
_MARKS = re.compile(r"`([^`]+)`|\*([^*]+)\*")


def segments(text: str) -> tuple[Segment, ...]:
    """`text` cut at its Markdown marks: plain runs, `code` spans and *emphasis*."""
    parts: list[Segment] = []
    at = 0
    for mark in _MARKS.finditer(text):
        if mark.start() > at:
            parts.append(("text", text[at : mark.start()]))
        code, em = mark.groups()
        parts.append(("code", code) if code is not None else ("em", em))
        at = mark.end()
    if at < len(text):
        parts.append(("text", text[at:]))
    return tuple(parts)


@dataclass(frozen=True)
class PageGuide:
    """One client as /connect shows it, with this deployment's MCP URL filled in."""

    key: str
    name: str
    steps: tuple[tuple[Segment, ...], ...]
    snippet: str
    note: str
    featured: bool
    hosted: bool


def for_page(mcp_url: str) -> list[PageGuide]:
    def fill(text: str) -> str:
        return text.replace(MCP_URL, mcp_url)

    return [
        PageGuide(
            key=client.key,
            name=client.name,
            steps=tuple(segments(fill(step)) for step in client.steps),
            snippet=fill(client.snippet),
            note=fill(client.note),
            featured=client.featured,
            hosted=client.hosted,
        )
        for client in CLIENTS
    ]
