"""One list of clients, two renderings: the README's client table is the one app/clients_guide.py
renders, /connect shows the same clients' steps with the deployment's MCP URL filled in, and the
list covers every client the issue names."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
from markupsafe import escape

from app.clients_guide import CLIENTS, how_to_connect, markdown_table, segments
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import sign_up

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- clients-guide:start -->\n", "<!-- clients-guide:end -->"
MCP_URL = "http://127.0.0.1:8000/mcp"  # the test app's PUBLIC_URL + /mcp
ON_CONNECT = ("Claude", "ChatGPT", "Cursor", "VS Code", "Claude Code", "MCP Inspector")


def test_the_readme_table_is_the_rendered_guide() -> None:
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)]
    assert table == markdown_table()


def test_every_mainstream_client_has_a_row() -> None:
    names = " ".join(client.name for client in CLIENTS)
    for name in (
        "claude.ai",
        "Claude Desktop",
        "Claude Code",
        "ChatGPT",
        "Cursor",
        "VS Code",
        "Codex",
        "Goose",
        "Windsurf",
        "mcp-remote",
        "Inspector",
    ):
        assert name in names, name


def test_every_row_says_how_to_connect_and_what_gatehouse_does() -> None:
    for client in CLIENTS:
        assert "{mcp_url}" in how_to_connect(client), client.name
        assert client.habits
        assert client.gatehouse
    assert len({client.key for client in CLIENTS}) == len(CLIENTS)


def test_the_readme_cell_holds_every_step_and_the_snippet_on_one_line() -> None:
    cursor = next(client for client in CLIENTS if client.key == "cursor")
    cell = how_to_connect(cursor)
    assert "\n" not in cell
    assert cell.startswith(cursor.steps[0] + ' `{ "mcpServers": {')
    assert cell.endswith(cursor.steps[-1])


def test_markdown_marks_become_code_and_emphasis_segments() -> None:
    assert segments("Run `npx x` then choose *Connect*.") == (
        ("text", "Run "),
        ("code", "npx x"),
        ("text", " then choose "),
        ("em", "Connect"),
        ("text", "."),
    )


def _plain(page: str) -> str:
    """The page's text as a person reads it: tags dropped, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _marks_dropped(step: str) -> str:
    return " ".join(re.sub(r"[`*]", " ", step.replace("{mcp_url}", MCP_URL)).split())


async def test_the_connect_page_shows_each_clients_steps_with_the_mcp_url(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    page = (await client.get("/connect")).text
    text = _plain(page)
    for guide in CLIENTS:
        assert f'id="{guide.key}"' in page, guide.key
        assert guide.name in text, guide.name
        for step in guide.steps:
            assert _marks_dropped(step) in text, step
        if guide.snippet:
            assert str(escape(guide.snippet.replace("{mcp_url}", MCP_URL))) in page, guide.key
    assert "{mcp_url}" not in page
    assert f"<code>claude mcp add --transport http gatehouse {MCP_URL}</code>" in page
    assert "<em>Add custom connector</em>" in page
    for name in ON_CONNECT:  # the six are shown in full, each under its own heading
        assert re.search(rf"<h2>{re.escape(name)}[^<]*</h2>", page), name


async def test_on_a_loopback_address_the_page_says_hosted_clients_cannot_reach_it(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    page = (await client.get("/connect")).text
    assert 'id="local-only"' in page
    assert "Claude and ChatGPT connect from their own cloud and cannot reach it" in page
    assert '<p class="warning">Claude connects from Anthropic' in page


async def test_on_a_public_https_address_the_page_warns_of_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    settings = make_settings(backend, tmp_path, public_url="https://gatehouse.example")
    async with running_app(settings) as app, client_for(app) as client:
        await sign_up(client)
        page = (await client.get("/connect")).text
    assert '<code id="mcp-url" class="url">https://gatehouse.example/mcp</code>' in page
    assert 'id="local-only"' not in page
    assert 'class="warning"' not in page
