"""`gatehouse clients`: list OAuth clients, add a resource server, revoke a client."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import common
from app.oauth import admin

app = typer.Typer(help="OAuth clients.", no_args_is_help=True)


async def _rows(session: AsyncSession) -> list[str]:
    return [
        f"{c.client_id}  {c.kind:<10} {'revoked' if c.revoked_at else 'active':<8} "
        f"{c.token_endpoint_auth_method:<20} {c.client_name}"
        for c in await admin.list_clients(session)
    ]


@app.command("list")
def clients_list() -> None:
    """List OAuth clients (registered and client-metadata-document clients)."""
    common.echo_rows(common.with_session(common.settings(), _rows), "no clients yet")


@app.command("add-resource-server")
def clients_add_resource_server(
    name: Annotated[
        str, typer.Option(help="Who it is, for `clients list`.")
    ] = "MCP resource server",
) -> None:
    """Register the `mcp` role as a resource server that may introspect access tokens.

    Prints AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET, the two variables
    to set on the `mcp` role's processes (`>> .env` works); the secret is shown only once.
    """
    settings = common.settings()

    async def work(session: AsyncSession) -> tuple[str, str, list[str]]:
        earlier = await admin.active_resource_server_ids(session)
        registered = await admin.register_resource_server(
            session, secret_key=settings.secret_key_bytes, name=name.strip()[:200]
        )
        return registered.client.client_id, registered.client_secret or "", earlier

    client_id, secret, earlier = common.with_session(settings, work)
    typer.echo(f"AUTH_INTROSPECTION_CLIENT_ID={client_id}")
    typer.echo(f"AUTH_INTROSPECTION_CLIENT_SECRET={secret}")
    typer.echo(
        "Set both on the mcp role's processes: they then ask this issuer's /introspect whether "
        "each token is still active. The secret is shown only once (it is stored hashed); "
        f"`gatehouse clients revoke {client_id}` withdraws it.",
        err=True,
    )
    if earlier:
        # Replacing a credential (a lost secret, a rotation) leaves the old one working.
        typer.echo(
            f"{len(earlier)} earlier resource-server credential(s) still work: "
            f"{', '.join(earlier)}. Once no replica uses one, withdraw it with "
            "`gatehouse clients revoke CLIENT_ID`.",
            err=True,
        )


@app.command("revoke")
def clients_revoke(client_id: Annotated[str, typer.Argument(help="The client_id.")]) -> None:
    """Block a client: its grants are revoked and it can no longer authorize or get tokens."""

    async def work(session: AsyncSession) -> int | None:
        return await admin.revoke_client(session, client_id)

    count = common.with_session(common.settings(), work)
    if count is None:
        raise common.fail(f"no client {client_id}")
    typer.echo(f"revoked client {client_id} and {count} grant(s)")
