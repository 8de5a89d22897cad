"""`gatehouse serve`, and the start-up report it prints (never a password or a key)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from sqlalchemy.engine import make_url

from app.cli import common
from app.cli.problems import bind_problem
from app.config import Settings
from app.kit.envelope import LocalKeyProvider, VaultKeyError
from app.telemetry import log_config


def cli_command() -> str:
    """How this shell runs the CLI: `gatehouse` when it is on PATH, else the script beside this
    interpreter (`make run` leaves it at .venv/bin/gatehouse, which no PATH names)."""
    script = Path(sys.executable).parent / "gatehouse"
    on_path = shutil.which("gatehouse")
    if not script.exists() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "gatehouse"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="FORWARDED_ALLOW_IPS",
            help="Proxies whose X-Forwarded-* headers are trusted (comma list, or '*').",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log one line per request (off saves CPU under heavy load).")
    ] = True,
) -> None:
    """Serve Gatehouse over HTTP."""
    import uvicorn  # only this command serves
    from uvicorn.supervisors import Multiprocess

    if host:
        os.environ["HOST"] = host
    if port:
        os.environ["PORT"] = str(port)
    if forwarded_allow_ips:
        os.environ["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    settings = common.settings()
    listening = bind(settings.host, settings.port)
    asyncio.run(common.check_schema(settings))
    settings.check(generate_secrets=True)  # the development secrets, once all else is right
    if settings.gatehouse_role in ("all", "auth"):
        asyncio.run(common.check_signing_key(settings))  # sealed under the VAULT_KEYS given
    # Only now, with the socket bound and the database answering, is it true.
    for line in startup_report(settings, workers=workers):
        typer.echo(line)
    if not settings.is_production:
        if settings.allow_signup:
            typer.echo(f"  create an account at {settings.public_url}/sign-up")
        typer.echo(f"  or from a shell: {cli_command()} users create --email you@example.com")
    config = uvicorn.Config(
        "app.asgi:app",
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        log_level="info",
        log_config=log_config(settings),
        access_log=access_log,
    )
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[listening]).run()
    else:
        server.run(sockets=[listening])
    if not server.started and workers == 1:
        raise typer.Exit(3)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says it is serving (as uvicorn binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise bind_problem(exc, host, port) from exc
    listening.set_inheritable(True)
    return listening


def startup_report(settings: Settings, *, workers: int) -> list[str]:
    """What this process is about to serve, for the operator: never a password or a key."""
    try:
        kids = LocalKeyProvider.from_env_value(settings.vault_keys_value).kids()
    except VaultKeyError as exc:
        raise common.fail(f"VAULT_KEYS: {exc}", 2) from exc
    lines = [
        f"Gatehouse is serving at {settings.public_url}",
        f"  environment: {settings.gatehouse_env}",
        f"  role:        {settings.gatehouse_role}",
    ]
    if settings.gatehouse_role in ("all", "auth"):
        lines.append(f"  issuer:      {settings.issuer}")
    if settings.gatehouse_role in ("all", "mcp"):
        lines += _resource_server_lines(settings)
    lines += [
        f"  database:    {_database_location(settings.database_url)}",
        f"  vault keys:  {len(kids)} loaded, active {kids[0]}"
        + (f" (also {', '.join(kids[1:])})" if len(kids) > 1 else ""),
        f"  telemetry:   {_telemetry_state()}",
        f"  listening:   {settings.host}:{settings.port} ({workers} worker(s)); "
        f"X-Forwarded-* trusted from {settings.forwarded_allow_ips}",
    ]
    warnings = settings.warnings()
    if workers > 1 and settings.is_sqlite:
        warnings.append("--workers > 1 on SQLite: writers will wait on each other; use PostgreSQL")
    lines += [f"  warning: {warning}" for warning in warnings]
    return lines


def _resource_server_lines(settings: Settings) -> list[str]:
    if settings.uses_introspection:
        client_id = settings.auth_introspection_client_id
        revocation = f"the issuer's introspection endpoint, as {client_id}"
    else:
        revocation = "polls the database"
    return [
        f"  MCP:         {settings.mcp_resource}",
        f"  trusts:      tokens of {settings.auth_issuer_url}",
        f"  revocation:  {revocation} (a revoked grant is refused within 5 s)",
    ]


def _database_location(url: str) -> str:
    """`postgresql user@host:port/name`: where the data is, without the password."""
    parsed = make_url(url)
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    user = f"{parsed.username}@" if parsed.username else ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{kind} {user}{parsed.host or 'localhost'}{port}/{parsed.database or ''}"


def _telemetry_state() -> str:
    """On when an OTLP endpoint is configured (the standard OTEL_* variables), else off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off (OTEL_SDK_DISABLED=true)"
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export traces)"
    parts = urlsplit(endpoint.strip())
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    shown += parts.path  # never the userinfo or query, which can carry credentials
    if importlib.util.find_spec("app.telemetry") is None:
        return f"off: OTLP endpoint {shown} is set, but this build has no exporter yet"
    return f"on, OTLP to {shown}"
