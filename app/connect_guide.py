"""How to connect each MCP client: the data /connect renders (one small record per client).

`{mcp_url}` in a step or snippet stands for this deployment's MCP URL (PUBLIC_URL + /mcp).
Kept as data so the README's client guide and the page can be generated from one list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientGuide:
    key: str  # a stable anchor: /connect#cursor
    name: str
    steps: tuple[str, ...]
    snippet: str = ""  # a configuration file's content, when the client takes one
    note: str = ""


GUIDES: tuple[ClientGuide, ...] = (
    ClientGuide(
        key="claude",
        name="Claude (claude.ai, Claude Desktop)",
        steps=(
            "Open Settings → Connectors and choose Add custom connector.",
            "Enter a name and the MCP URL {mcp_url}; leave the OAuth fields empty.",
            "Choose Connect, then sign in here and approve.",
        ),
        note="Claude connects from Anthropic's cloud: the URL must be reachable from the internet.",
    ),
    ClientGuide(
        key="chatgpt",
        name="ChatGPT",
        steps=(
            "Open Settings → Apps & Connectors → Advanced and turn on developer mode.",
            "Choose Create, enter a name and the MCP URL {mcp_url}, authentication OAuth.",
            "Choose Create, then sign in here and approve.",
        ),
        note="ChatGPT connects from OpenAI's cloud: the URL must be reachable from the internet.",
    ),
    ClientGuide(
        key="cursor",
        name="Cursor",
        steps=(
            "Add this to ~/.cursor/mcp.json (or .cursor/mcp.json in one project).",
            "Open Cursor Settings → MCP, choose Connect next to gatehouse, sign in and approve.",
        ),
        snippet='{\n  "mcpServers": {\n    "gatehouse": { "url": "{mcp_url}" }\n  }\n}',
    ),
    ClientGuide(
        key="vscode",
        name="VS Code (Copilot agent mode)",
        steps=(
            "Add this to .vscode/mcp.json (or run MCP: Open User Configuration).",
            "Choose Start above the server, then sign in here and approve.",
        ),
        snippet=(
            '{\n  "servers": {\n    "gatehouse": { "type": "http", "url": "{mcp_url}" }\n  }\n}'
        ),
    ),
    ClientGuide(
        key="claude-code",
        name="Claude Code",
        steps=(
            "Run: claude mcp add --transport http gatehouse {mcp_url}",
            "In Claude Code, run /mcp, choose gatehouse → Authenticate, sign in and approve.",
        ),
    ),
    ClientGuide(
        key="inspector",
        name="MCP Inspector",
        steps=(
            "Run: npx @modelcontextprotocol/inspector and open the link it prints.",
            "Choose transport Streamable HTTP, enter {mcp_url} and choose Connect.",
            "On the sign-in prompt, sign in here and approve.",
        ),
    ),
)


def guides_for(mcp_url: str) -> list[ClientGuide]:
    """The guides with this deployment's MCP URL filled in."""
    return [
        ClientGuide(
            key=guide.key,
            name=guide.name,
            steps=tuple(step.replace("{mcp_url}", mcp_url) for step in guide.steps),
            snippet=guide.snippet.replace("{mcp_url}", mcp_url),
            note=guide.note,
        )
        for guide in GUIDES
    ]
