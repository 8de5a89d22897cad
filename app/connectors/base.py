"""What a connector is, and the errors an upstream can give.

A connector declares a name and label, the credential it needs (with help for finding one) and
how to validate that credential against the upstream. This is all the credential pages and the
consent step need, so it imports neither the MCP SDK nor `app.mcp`; a connector's tools live in
their own module (`github_tools.py`) and call the upstream through `app.connectors.upstream`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.kit.envelope import SecretValue


@dataclass(frozen=True)
class CredentialSpec:
    label: str  # "Personal access token"
    help_text: str
    help_url: str


class UpstreamError(Exception):
    """An upstream failure, described in plain words safe to show a user or a model."""


class CredentialRejected(UpstreamError):
    pass


class RateLimited(UpstreamError):
    def __init__(self, message: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(UpstreamError):
    pass


class UpstreamUnavailable(UpstreamError):
    pass


class Connector(Protocol):
    name: str
    label: str
    credential: CredentialSpec

    async def validate(self, secret: SecretValue) -> str:
        """The upstream account the credential belongs to; raises UpstreamError if unusable."""
        ...

    async def aclose(self) -> None: ...
