"""`gatehouse providers list` and `gatehouse providers test NAME`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.config import ConfigError, Settings, load_settings
from app.identity.flow import Providers
from app.identity.settings import ProviderConfig
from app.identity.upstream import Upstream

providers_app = typer.Typer(help="Upstream identity providers people sign in with.")


def _settings() -> Settings:
    try:
        return load_settings()
    except (ConfigError, ValueError) as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc


async def _probe_all(configs: tuple[ProviderConfig, ...]) -> list[tuple[Upstream, list[str]]]:
    providers = Providers(configs)
    try:
        return [(u, await u.probe()) for u in providers.upstreams.values()]
    finally:
        await providers.aclose()


@providers_app.command("list")
def list_providers() -> None:
    """Each configured provider, the callback URL to register with it, whether it answers."""
    settings = _settings()
    if not settings.identity_providers:
        typer.echo("no identity providers configured (set OIDC_PROVIDERS)")
        return
    for upstream, problems in asyncio.run(_probe_all(settings.identity_providers)):
        config = upstream.config
        status = "ok" if not problems else f"unavailable: {problems[0]}"
        typer.echo(
            f"{config.name}\t{config.kind}\t{config.label}\t"
            f"{settings.public_url}{config.callback_path()}\t{config.issuer}\t{status}"
        )


@providers_app.command("test")
def probe_provider(
    name: Annotated[str, typer.Argument(help="The provider's name in OIDC_PROVIDERS.")],
) -> None:
    """Fetch the provider's metadata and keys; print what is wrong, if anything."""
    settings = _settings()
    configs = tuple(c for c in settings.identity_providers if c.name == name.lower())
    if not configs:
        names = ", ".join(c.name for c in settings.identity_providers) or "none"
        typer.secho(f"no provider named {name!r} (configured: {names})", err=True, fg="red")
        raise typer.Exit(2)
    [(upstream, problems)] = asyncio.run(_probe_all(configs))
    config = upstream.config
    typer.echo(f"{config.name}: {config.kind} provider {config.issuer}")
    typer.echo(f"callback URL to register: {settings.public_url}{config.callback_path()}")
    if problems:
        for problem in problems:
            typer.secho(f"problem: {problem}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo("metadata and keys load: ok")
