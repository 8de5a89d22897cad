"""GitHub's read-only tools: each acts as the owner of the token the calling user connected.

A tool is a module-level function declared on `toolset`: it names a fetch that shapes GitHub's
answer and its arguments; `_run` finds the call and the GitHub connector and hands both to
`run_upstream`. Outputs are paginated and bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from app.connectors.base import UpstreamUnavailable
from app.connectors.github import GitHubConnector, has_next_page, json_object
from app.connectors.upstream import run_upstream
from app.kit.envelope import SecretValue
from app.mcp.call import CallContext, call_context
from app.mcp.server import ToolSet

MAX_PER_PAGE = 50
MAX_TEXT = 300

toolset = ToolSet()


def _clip(value: object, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _github(call: CallContext) -> GitHubConnector:
    connector = call.services.connectors.get(GitHubConnector.name)
    if not isinstance(connector, GitHubConnector):  # registered only when it is enabled
        raise ToolError("the GitHub connector is not enabled here")
    return connector


def _repo(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "full_name": _clip(r.get("full_name")),
        "private": bool(r.get("private")),
        "description": _clip(r.get("description")),
        "html_url": _clip(r.get("html_url")),
        "updated_at": _clip(r.get("updated_at")),
        "stars": r.get("stargazers_count"),
    }


def _issue(i: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": _clip(i.get("title")),
        "number": i.get("number"),
        "state": _clip(i.get("state"), 20),
        "html_url": _clip(i.get("html_url")),
        "updated_at": _clip(i.get("updated_at")),
        "pull_request": "pull_request" in i,
    }


async def fetch_user(github: GitHubConnector, secret: SecretValue) -> dict[str, Any]:
    user = json_object(await github.get(secret, "/user"))
    return {
        "login": _clip(user.get("login")),
        "name": _clip(user.get("name")),
        "html_url": _clip(user.get("html_url")),
        "public_repos": user.get("public_repos"),
    }


async def fetch_repos(
    github: GitHubConnector, secret: SecretValue, *, page: int, per_page: int
) -> dict[str, Any]:
    params = {"sort": "updated", "page": page, "per_page": per_page}
    response = await github.get(secret, "/user/repos", params)
    repos = response.json()
    if not isinstance(repos, list):
        raise UpstreamUnavailable("it gave an unexpected answer")
    return {
        "repos": [_repo(r) for r in repos[:per_page] if isinstance(r, dict)],
        "page": page,
        "has_next": has_next_page(response),
    }


async def fetch_issues(
    github: GitHubConnector, secret: SecretValue, *, query: str, page: int, per_page: int
) -> dict[str, Any]:
    params = {"q": query, "page": page, "per_page": per_page}
    response = await github.get(secret, "/search/issues", params)
    body = response.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise UpstreamUnavailable("it gave an unexpected answer")
    return {
        "total_count": body.get("total_count"),
        "items": [_issue(i) for i in items[:per_page] if isinstance(i, dict)],
        "page": page,
        "has_next": has_next_page(response),
    }


async def _run(
    ctx: Context, tool: str, fetch: Callable[..., Awaitable[dict[str, Any]]], **args: str | int
) -> dict[str, Any]:
    """The call of every GitHub tool: `fetch(github, secret, **args)` as the calling user."""
    call = call_context(ctx)
    github = _github(call)
    bound = partial(fetch, github, **args)
    return await run_upstream(call, github, tool=tool, args=args, fetch=bound)


@toolset.tool(
    title="GitHub: who am I",
    description="The GitHub account the signed-in user connected.",
    read_only=True,
    idempotent=True,
)
async def github_whoami(ctx: Context) -> dict[str, Any]:
    return await _run(ctx, "github_whoami", fetch_user)


@toolset.tool(
    title="GitHub: list repositories",
    description=(
        "Repositories the connected GitHub account can access, most recently updated "
        "first. Paginated: pass page=2, 3, ... while has_next is true."
    ),
    read_only=True,
    idempotent=True,
)
async def github_list_repos(
    ctx: Context,
    page: int = Field(default=1, ge=1, le=1000),
    per_page: int = Field(default=30, ge=1, le=MAX_PER_PAGE),
) -> dict[str, Any]:
    return await _run(ctx, "github_list_repos", fetch_repos, page=page, per_page=per_page)


@toolset.tool(
    title="GitHub: search issues",
    description=(
        "Search issues and pull requests with GitHub's search syntax "
        "(e.g. 'repo:owner/name is:open label:bug'). Paginated."
    ),
    read_only=True,
    idempotent=True,
)
async def github_search_issues(
    ctx: Context,
    query: str = Field(min_length=1, max_length=256),
    page: int = Field(default=1, ge=1, le=100),
    per_page: int = Field(default=20, ge=1, le=MAX_PER_PAGE),
) -> dict[str, Any]:
    return await _run(
        ctx, "github_search_issues", fetch_issues, query=query, page=page, per_page=per_page
    )


register = toolset.register
