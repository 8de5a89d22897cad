"""The README's client table is the one app/clients_guide.py renders, and it covers every client
the issue names."""

from __future__ import annotations

from pathlib import Path

from app.clients_guide import CLIENTS, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- clients-guide:start -->\n", "<!-- clients-guide:end -->"


def test_the_readme_table_is_the_rendered_guide() -> None:
    text = README.read_text()
    table = text[text.index(START) + len(START) : text.index(END)]
    assert table == markdown_table()


def test_every_mainstream_client_has_a_row() -> None:
    names = " ".join(guide.name for guide in CLIENTS)
    for client in (
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
        assert client in names, client


def test_every_row_says_how_to_connect_and_what_gatehouse_does() -> None:
    for guide in CLIENTS:
        assert "{mcp_url}" in guide.steps, guide.name
        assert guide.habits
        assert guide.gatehouse
