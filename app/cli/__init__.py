"""The `gatehouse` command: serve, migrate, and manage the deployment.

One module per command group; none holds SQL (the queries live in each feature's services,
app/oauth/admin.py for the authorization server's).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from app.cli import clients, common, db, grants, keys, problems, purge, serve, users, vault
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


_debug: list[bool] = []


@cli.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of a failure (or LOG_LEVEL=debug).")
    ] = False,
) -> None:
    """Gatehouse: sign-in, OAuth 2.1 and MCP in one service.

    Reads the environment and the .env file named by GATEHOUSE_ENV_FILE (default ./.env), the
    same configuration `gatehouse serve` reads.
    """
    _debug.append(debug)


def main() -> None:
    """Run the command; a mistake a person can fix is one line with the fix, not a traceback."""
    try:
        cli()
    except Exception as exc:
        if any(_debug) or os.environ.get("LOG_LEVEL", "").strip().lower() == "debug":
            raise
        url = common.loaded[-1].database_url if common.loaded else None
        problem = problems.explain(exc, url)
        if problem is None:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            problem = problems.Problem(
                f"gatehouse failed: {type(exc).__name__}: {reason} (rerun with --debug for "
                "the traceback)"
            )
        typer.secho(str(problem), err=True, fg="red")
        sys.exit(problem.code)
