"""MCP_TOOLSETS: off by default, names checked, the conformance toolset refused in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.mcp.server import GatehouseMCP
from app.mcp.tools import register_all

PRODUCTION = {
    "GATEHOUSE_ENV": "production",
    "PUBLIC_URL": "https://gatehouse.example",
    "SECRET_KEY": "s" * 48,
    "VAULT_KEYS": "k1:" + "A" * 43 + "=",
    "DATABASE_URL": "postgresql://gatehouse@db.example:5432/gatehouse",
    "SMTP_URL": "smtp://mail.example:587",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    return monkeypatch


def test_off_by_default_and_no_fixture_is_registered(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.mcp_toolsets == []
    server = register_all(GatehouseMCP(settings), (), settings.mcp_toolsets)
    assert not any(name.startswith("test_") for name in server.tool_scopes)


def test_conformance_registers_the_fixtures(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_TOOLSETS", "conformance")
    settings = load_settings()
    server = register_all(GatehouseMCP(settings), (), settings.mcp_toolsets)
    assert {"test_image_content", "test_tool_with_progress", "notes_delete"} <= set(
        server.tool_scopes
    )
    assert server.tool_requires["test_missing_capability"] == ("sampling",)


def test_an_unknown_toolset_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_TOOLSETS", "conformance,everything")
    with pytest.raises(ConfigError, match="MCP_TOOLSETS names unknown toolsets everything"):
        load_settings()


def test_production_refuses_the_conformance_toolset(environment: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        environment.setenv(name, value)
    load_settings()  # the environment is otherwise acceptable
    environment.setenv("MCP_TOOLSETS", "conformance")
    with pytest.raises(ConfigError, match="MCP_TOOLSETS=conformance is for tests only"):
        load_settings()
