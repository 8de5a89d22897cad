"""`gatehouse db`: migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import common

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations (to the newest by default)."""
    from alembic import command  # see common.alembic_config

    settings = common.settings()
    command.upgrade(common.alembic_config(settings.database_url), revision)
    typer.echo(f"database at {revision}: {common.safe_database(settings.database_url)}")


@app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION ('base' for an empty database)."""
    from alembic import command

    settings = common.settings()
    command.downgrade(common.alembic_config(settings.database_url), revision)
