"""The `gatehouse` command: serve, migrate, and manage the deployment.

One module per command group; none holds SQL (the queries live in each feature's services,
app/oauth/admin.py for the authorization server's).
"""

from __future__ import annotations

import typer

from app.cli import clients, db, grants, keys, purge, serve, users, vault
from app.cli.common import alembic_config
from app.identity.cli import providers_app

__all__ = ["alembic_config", "cli", "main"]

# Never print local variables in tracebacks: they can hold passwords and keys.
cli = typer.Typer(
    help="Gatehouse: sign-in, OAuth 2.1 and MCP in one service.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
cli.command()(serve.serve)
cli.add_typer(db.app, name="db")
cli.add_typer(users.app, name="users")
cli.add_typer(clients.app, name="clients")
cli.add_typer(grants.app, name="grants")
cli.add_typer(keys.app, name="keys")
cli.add_typer(vault.app, name="vault")
cli.command("purge")(purge.purge_command)
cli.add_typer(providers_app, name="providers")


def main() -> None:
    cli()
