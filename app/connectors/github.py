"""GitHub: validate a personal access token, and read-only tools that act as its owner.

GITHUB_API_URL points at api.github.com, a GitHub Enterprise server (https://HOST/api/v3), or a
test server. Every call has a timeout; outputs are paginated and bounded.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from mcp.server.mcpserver import Context
from pydantic import Field

from app import __version__
from app.connectors.base import (
    CredentialRejected,
    CredentialSpec,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
    run_upstream,
)
from app.kit.envelope import SecretValue
from app.mcp.context import call_context
from app.mcp.server import GatehouseMCP

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_PER_PAGE = 50
MAX_TEXT = 300
_NEXT = re.compile(r'<[^>]+>;\s*rel="next"')


def _clip(value: Any, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GitHubConnector:
    name = "github"
    label = "GitHub"
    credential = CredentialSpec(
        label="GitHub personal access token",
        help_text=(
            "Create a fine-grained token with read access to the repositories you want the "
            "tools to see. It is stored encrypted and used only for your own tool calls."
        ),
        help_url="https://github.com/settings/personal-access-tokens/new",
    )

    def __init__(self, api_url: str, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self._http = httpx.AsyncClient(
            base_url=api_url,
            timeout=timeout,
            follow_redirects=False,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"gatehouse/{__version__}",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(
        self, secret: SecretValue, path: str, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {secret.reveal()}"}
        try:
            response = await self._http.get(path, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable("the request timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable("it could not be reached") from exc
        _raise_for(response)
        try:
            response.json()  # decoded once here so a malformed body is an upstream error
        except ValueError as exc:
            raise UpstreamUnavailable("it gave an answer that is not JSON") from exc
        return response

    async def validate(self, secret: SecretValue) -> str:
        response = await self._get(secret, "/user")
        login = _object(response).get("login")
        if not isinstance(login, str) or not login:
            raise UpstreamUnavailable("it gave an unexpected answer")
        return login

    def register_tools(self, mcp: GatehouseMCP) -> None:
        connector = self

        @mcp.tool(
            name="github_whoami",
            title="GitHub: who am I",
            description="The GitHub account the signed-in user connected.",
            read_only=True,
            idempotent=True,
        )
        async def github_whoami(ctx: Context) -> dict[str, Any]:
            async def fetch(secret: SecretValue) -> dict[str, Any]:
                user = _object(await connector._get(secret, "/user"))
                return {
                    "login": _clip(user.get("login")),
                    "name": _clip(user.get("name")),
                    "html_url": _clip(user.get("html_url")),
                    "public_repos": user.get("public_repos"),
                }

            return await run_upstream(
                call_context(ctx), connector, tool="github_whoami", args={}, fetch=fetch
            )

        @mcp.tool(
            name="github_list_repos",
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
            async def fetch(secret: SecretValue) -> dict[str, Any]:
                response = await connector._get(
                    secret,
                    "/user/repos",
                    {"sort": "updated", "page": page, "per_page": per_page},
                )
                repos = response.json()
                if not isinstance(repos, list):
                    raise UpstreamUnavailable("it gave an unexpected answer")
                return {
                    "repos": [
                        {
                            "full_name": _clip(r.get("full_name")),
                            "private": bool(r.get("private")),
                            "description": _clip(r.get("description")),
                            "html_url": _clip(r.get("html_url")),
                            "updated_at": _clip(r.get("updated_at")),
                            "stars": r.get("stargazers_count"),
                        }
                        for r in repos[:per_page]
                        if isinstance(r, dict)
                    ],
                    "page": page,
                    "has_next": bool(_NEXT.search(response.headers.get("link", ""))),
                }

            return await run_upstream(
                call_context(ctx),
                connector,
                tool="github_list_repos",
                args={"page": page, "per_page": per_page},
                fetch=fetch,
            )

        @mcp.tool(
            name="github_search_issues",
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
            async def fetch(secret: SecretValue) -> dict[str, Any]:
                response = await connector._get(
                    secret, "/search/issues", {"q": query, "page": page, "per_page": per_page}
                )
                body = response.json()
                items = body.get("items") if isinstance(body, dict) else None
                if not isinstance(items, list):
                    raise UpstreamUnavailable("it gave an unexpected answer")
                return {
                    "total_count": body.get("total_count"),
                    "items": [
                        {
                            "title": _clip(i.get("title")),
                            "number": i.get("number"),
                            "state": _clip(i.get("state"), 20),
                            "html_url": _clip(i.get("html_url")),
                            "updated_at": _clip(i.get("updated_at")),
                            "pull_request": "pull_request" in i,
                        }
                        for i in items[:per_page]
                        if isinstance(i, dict)
                    ],
                    "page": page,
                    "has_next": bool(_NEXT.search(response.headers.get("link", ""))),
                }

            return await run_upstream(
                call_context(ctx),
                connector,
                tool="github_search_issues",
                args={"query": query, "page": page, "per_page": per_page},
                fetch=fetch,
            )


def _object(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise UpstreamUnavailable("it gave an unexpected answer")
    return body


def _raise_for(response: httpx.Response) -> None:
    """Classify an upstream answer; never pass its body on."""
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        raise CredentialRejected("the token was refused")
    remaining = response.headers.get("x-ratelimit-remaining")
    if status == 429 or (status == 403 and (remaining == "0" or "retry-after" in response.headers)):
        raise RateLimited("rate limited", _retry_after(response))
    if status == 403:
        raise CredentialRejected("the token lacks permission for this")
    if status == 404:
        raise NotFound("The repository or resource does not exist or this token cannot see it.")
    if status == 422:
        raise UpstreamError("it did not accept the query")
    raise UpstreamUnavailable(f"it answered {status}")


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    if value and value.isdigit():
        return int(value)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(1, int(reset) - int(time.time()))
    return None
