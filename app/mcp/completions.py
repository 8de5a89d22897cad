"""`completion/complete` for prompt and resource template arguments.

MCP 2025-11-25, server/utilities/completion: "Servers that support completions MUST declare the
`completions` capability"; errors: "Invalid prompt name: -32602 (Invalid params)". A completer is
`(value, context) -> list[str]`, where `context` holds the arguments already resolved; at most
100 values are returned ("maximum 100 items per response").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

Completer = Callable[[str, Mapping[str, str]], Awaitable[list[str]] | list[str]]
MAX_VALUES = 100


def prefix_completer(values: list[str]) -> Completer:
    """The simplest completer: the given values that start with what was typed."""

    def complete(value: str, _context: Mapping[str, str]) -> list[str]:
        return [v for v in values if v.lower().startswith(value.lower())]

    return complete


class Completions:
    def __init__(self) -> None:
        # ("ref/prompt" | "ref/resource", prompt name or URI template) -> argument -> completer
        self.known: dict[tuple[str, str], dict[str, Completer]] = {}

    def add(self, kind: str, name: str, completers: Mapping[str, Completer]) -> None:
        self.known.setdefault((kind, name), {}).update(completers)

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        if isinstance(ref, PromptReference):
            key, kind = ("ref/prompt", ref.name), "prompt"
        else:
            key, kind = ("ref/resource", ref.uri), "resource template"
        completers = self.known.get(key)
        if completers is None:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Unknown {kind}: {key[1]}",
                data={"ref": key[1]},
            )
        completer = completers.get(argument.name)
        if completer is None:
            return Completion(values=[], total=0, has_more=False)
        resolved: dict[str, Any] = dict(context.arguments or {}) if context else {}
        found = completer(argument.value, resolved)
        values = await found if isinstance(found, Awaitable) else found
        return Completion(
            values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES
        )
