"""Gatehouse: an OAuth 2.1 authorization server and a remote MCP server in one service."""

__version__ = "0.1.0"
