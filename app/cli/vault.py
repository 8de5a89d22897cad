"""`gatehouse vault`: how many credentials each master key wraps; re-key them."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

import typer

from app.auth.mfa.totp import rewrap as rewrap_totp
from app.cli import common
from app.config import Settings
from app.kit.envelope import DecryptionError, Envelope
from app.oauth import admin
from app.vault import service as vault

app = typer.Typer(help="The credential vault's master keys.", no_args_is_help=True)


def _configured_kids(settings: Settings) -> list[str]:
    return [entry.split(":", 1)[0].strip() for entry in settings.vault_keys_value.split(",")]


@app.command("status")
def vault_status() -> None:
    """How many stored credentials each master key wraps (the active key is marked)."""
    settings = common.settings()
    counts = common.with_session(settings, vault.status)
    configured = _configured_kids(settings)
    for kid in dict.fromkeys([*configured, *counts]):
        marks = []
        if kid == configured[0]:
            marks.append("active")
        if kid not in configured:
            marks.append("NOT CONFIGURED: these credentials cannot be read")
        suffix = f"  ({', '.join(marks)})" if marks else ""
        typer.echo(f"{kid}: {counts.get(kid, 0)} credential(s){suffix}")


def _rekey_credentials(settings: Settings, envelope: Envelope, batch: int) -> tuple[int, int]:
    """Re-wrap every credential, one committed batch at a time: (re-wrapped, unreadable)."""
    total = unreadable = 0
    after: uuid.UUID | None = None
    while True:
        work = partial(vault.rekey_batch, envelope=envelope, after=after, batch=batch)
        progress = common.with_session(settings, work)
        total += progress.rewrapped
        unreadable += progress.unreadable
        if progress.last_id is None:
            return total, unreadable
        after = progress.last_id
        typer.echo(f"re-wrapped {total} so far")


@app.command("rekey")
def vault_rekey(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 100,
) -> None:
    """Re-wrap every credential's data key under the active (first) VAULT_KEYS key.

    Safe while the service runs, and resumable: each batch commits on its own. When it reports
    nothing left under the old key, that key can be removed from VAULT_KEYS.
    """
    settings = common.settings()
    envelope = common.envelope(settings)
    total, unreadable = _rekey_credentials(settings, envelope, batch)
    typer.echo(f"re-wrapped {total} credential(s) under {envelope.provider.active_kid}")
    # The token signing keys are sealed under the same master keys.
    try:
        keys = common.with_session(settings, partial(admin.rewrap_signing_keys, envelope=envelope))
    except DecryptionError:
        typer.secho("a signing key could not be opened with the configured keys", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"re-wrapped {keys} signing key(s) under {envelope.provider.active_kid}")
    # So are the second factors' TOTP secrets: left under a removed key, nobody could sign in.
    try:
        totp = common.with_session(settings, partial(rewrap_totp, envelope=envelope))
    except DecryptionError:
        typer.secho("a TOTP secret could not be opened with the configured keys", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"re-wrapped {totp} TOTP secret(s) under {envelope.provider.active_kid}")
    if unreadable:
        typer.secho(
            f"{unreadable} credential(s) could not be opened with the configured keys "
            "(their users must reconnect them)",
            err=True,
            fg="yellow",
        )
        raise typer.Exit(1)
