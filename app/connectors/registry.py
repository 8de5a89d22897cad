"""The connectors enabled by CONNECTORS, built once per process."""

from __future__ import annotations

from app.config import Settings
from app.connectors.base import Connector
from app.connectors.github import GitHubConnector


def build_connectors(settings: Settings) -> dict[str, Connector]:
    connectors: dict[str, Connector] = {}
    for name in settings.connectors:
        if name == "github":
            connectors[name] = GitHubConnector(settings.github_api_url)
    return connectors
