"""Gatehouse: an OAuth 2.1 authorization server and a remote MCP server in one service."""

import sys

__version__ = "0.1.0"

# httpx's package imports its own command-line client, httpx._main, whenever click, rich and
# pygments are installed (typer and uvicorn bring them): pygments' lexers and rich's progress
# bars and syntax highlighting, ~3 MiB resident in every process of ours that imports httpx
# (bench/rss.py). We never run that client (the `httpx` command is a process of its own), so
# its import is made to fail here, before httpx is imported, and httpx keeps its stub `main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
