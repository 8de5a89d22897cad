"""The `gatehouse` command: serve, migrate, and manage the deployment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.cli import users_reset_mfa
from app.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from app.kit.envelope import Envelope

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent

# Never print local variables in tracebacks: they can hold passwords and keys.
cli = typer.Typer(
    help="Gatehouse: sign-in, OAuth 2.1 and MCP in one service.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_cli = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
clients_cli = typer.Typer(help="OAuth clients.", no_args_is_help=True)
grants_cli = typer.Typer(help="Grants users gave to clients.", no_args_is_help=True)
keys_cli = typer.Typer(help="Token signing keys.", no_args_is_help=True)
vault_cli = typer.Typer(help="The credential vault's master keys.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")
cli.add_typer(clients_cli, name="clients")
cli.add_typer(grants_cli, name="grants")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(vault_cli, name="vault")


def _settings() -> Settings:
    try:
        return load_settings()
    except (ConfigError, ValueError) as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from app.db import create_engine, create_sessionmaker

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def alembic_config(database_url: str) -> object:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


@cli.command()
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
    import uvicorn

    from app.telemetry import log_config

    if host:
        os.environ["HOST"] = host
    if port:
        os.environ["PORT"] = str(port)
    if forwarded_allow_ips:
        os.environ["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    settings = _settings()
    for line in _startup_report(settings, workers=workers):
        typer.echo(line)
    if not settings.is_production:
        if settings.allow_signup:
            typer.echo(f"  create an account at {settings.public_url}/sign-up")
        typer.echo("  or from a shell: gatehouse users create --email you@example.com")
    uvicorn.run(
        "app.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        log_level="info",
        log_config=log_config(settings),
        access_log=access_log,
    )


def _startup_report(settings: Settings, *, workers: int) -> list[str]:
    """What this process is about to serve, for the operator: never a password or a key."""
    from app.kit.envelope import LocalKeyProvider, VaultKeyError

    try:
        kids = LocalKeyProvider.from_env_value(settings.vault_keys_value).kids()
    except VaultKeyError as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    lines = [
        f"Gatehouse is serving at {settings.public_url}",
        f"  environment: {settings.gatehouse_env}",
        f"  role:        {settings.gatehouse_role}",
    ]
    if settings.gatehouse_role in ("all", "auth"):
        lines.append(f"  issuer:      {settings.issuer}")
    if settings.gatehouse_role in ("all", "mcp"):
        lines.append(f"  MCP:         {settings.mcp_resource}")
        lines.append(f"  trusts:      tokens of {settings.auth_issuer_url}")
        if settings.uses_introspection:
            client_id = settings.auth_introspection_client_id
            revocation = f"the issuer's introspection endpoint, as {client_id}"
        else:
            revocation = "polls the database"
        lines.append(f"  revocation:  {revocation} (a revoked grant is refused within 5 s)")
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


def _database_location(url: str) -> str:
    """`postgresql user@host:port/name`: where the data is, without the password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    user = f"{parsed.username}@" if parsed.username else ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{kind} {user}{parsed.host or 'localhost'}{port}/{parsed.database or ''}"


def _telemetry_state() -> str:
    """On when an OTLP endpoint is configured (the standard OTEL_* variables), else off."""
    import importlib.util
    from urllib.parse import urlsplit

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


def _safe_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations (to the newest by default)."""
    from alembic import command

    settings = _settings()
    command.upgrade(alembic_config(settings.database_url), revision)  # type: ignore[arg-type]
    typer.echo(f"database at {revision}: {_safe_database(settings.database_url)}")


@db_cli.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION ('base' for an empty database)."""
    from alembic import command

    settings = _settings()
    command.downgrade(alembic_config(settings.database_url), revision)  # type: ignore[arg-type]


@users_cli.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Email address (the sign-in name).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create a user account."""
    from app.auth import service

    settings = _settings()

    async def work(session: AsyncSession) -> str:
        user = await service.create_user(session, email=email, password=password, name=name)
        return str(user.id)

    try:
        user_id = _with_session(settings, work)
    except service.AccountError as exc:
        typer.secho(str(exc), err=True, fg="red")
        raise typer.Exit(1) from exc
    typer.echo(f"created {email} ({user_id})")


@users_cli.command("list")
def users_list() -> None:
    """List user accounts."""
    from app.auth import service
    from app.auth.mfa.policy import FactorSummary, summaries

    async def work(session: AsyncSession) -> list[str]:
        rows = []
        factors = await summaries(session)
        for user in await service.list_users(session):
            state = "disabled" if user.disabled_at else "active"
            mfa = factors.get(user.id, FactorSummary(totp=False, passkeys=0))
            second = f"2fa:{'totp' if mfa.totp else 'off'} passkeys:{mfa.passkeys}"
            rows.append(f"{user.id}  {user.email:<40} {state:<8} {second:<22}  {user.name}")
        return rows

    rows = _with_session(_settings(), work)
    for row in rows:
        typer.echo(row)
    if not rows:
        typer.echo("no users yet")


def _set_disabled(email: str, disabled: bool) -> None:
    from app.auth import service

    async def work(session: AsyncSession) -> bool:
        user = await service.find_user_by_email(session, email)
        if user is None:
            return False
        await service.set_disabled(session, user=user, disabled=disabled)
        return True

    if not _with_session(_settings(), work):
        typer.secho(f"no user with email {email}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"{'disabled' if disabled else 'enabled'} {email}")


@users_cli.command("disable")
def users_disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Disable an account: it can no longer sign in, and its sessions end."""
    _set_disabled(email, True)


@users_cli.command("enable")
def users_enable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Enable a disabled account again."""
    _set_disabled(email, False)


users_cli.command("reset-mfa")(users_reset_mfa)


@clients_cli.command("list")
def clients_list() -> None:
    """List OAuth clients (registered and client-metadata-document clients)."""
    from sqlalchemy import select

    from app.oauth.models import OAuthClient

    async def work(session: AsyncSession) -> list[str]:
        rows = (
            await session.execute(select(OAuthClient).order_by(OAuthClient.created_at))
        ).scalars()
        return [
            f"{c.client_id}  {c.kind:<10} {'revoked' if c.revoked_at else 'active':<8} "
            f"{c.token_endpoint_auth_method:<20} {c.client_name}"
            for c in rows
        ]

    rows = _with_session(_settings(), work)
    for row in rows:
        typer.echo(row)
    if not rows:
        typer.echo("no clients yet")


@clients_cli.command("add-resource-server")
def clients_add_resource_server(
    name: Annotated[
        str, typer.Option(help="Who it is, for `clients list`.")
    ] = "MCP resource server",
) -> None:
    """Register the `mcp` role as a resource server that may introspect access tokens.

    Prints AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET, the two variables
    to set on the `mcp` role's processes (`>> .env` works); the secret is shown only once.
    """
    from sqlalchemy import select

    from app.oauth.models import OAuthClient
    from app.oauth.registration import RESOURCE_SERVER_KIND, register_resource_server

    settings = _settings()

    async def work(session: AsyncSession) -> tuple[str, str, list[str]]:
        earlier = await session.execute(
            select(OAuthClient.client_id).where(
                OAuthClient.kind == RESOURCE_SERVER_KIND, OAuthClient.revoked_at.is_(None)
            )
        )
        registered = await register_resource_server(
            session, secret_key=settings.secret_key_bytes, name=name.strip()[:200]
        )
        return registered.client.client_id, registered.client_secret or "", list(earlier.scalars())

    client_id, secret, earlier = _with_session(settings, work)
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


@clients_cli.command("revoke")
def clients_revoke(client_id: Annotated[str, typer.Argument(help="The client_id.")]) -> None:
    """Block a client: its grants are revoked and it can no longer authorize or get tokens."""
    from sqlalchemy import select

    from app.db import utcnow
    from app.oauth import service
    from app.oauth.models import OAuthGrant

    async def work(session: AsyncSession) -> int | None:
        client = await service.find_client(session, client_id)
        if client is None:
            return None
        client.revoked_at = client.revoked_at or utcnow()
        grant_ids = (
            await session.execute(
                select(OAuthGrant.id).where(
                    OAuthGrant.client_pk == client.id, OAuthGrant.revoked_at.is_(None)
                )
            )
        ).scalars()
        count = 0
        for grant_id in list(grant_ids):
            count += await service.revoke_grant(session, grant_id, reason="client_revoked")
        return count

    count = _with_session(_settings(), work)
    if count is None:
        typer.secho(f"no client {client_id}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"revoked client {client_id} and {count} grant(s)")


@grants_cli.command("list")
def grants_list(
    user: Annotated[str | None, typer.Option(help="Only this user's grants (email).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked grants.")] = False,
) -> None:
    """List grants: which user approved which client for which scopes."""
    from sqlalchemy import func, select

    from app.auth.models import User
    from app.oauth.models import OAuthGrant

    async def work(session: AsyncSession) -> list[str]:
        stmt = select(OAuthGrant).order_by(OAuthGrant.created_at)
        if user:
            stmt = stmt.join(User).where(func.lower(User.email) == user.strip().lower())
        if not all_:
            stmt = stmt.where(OAuthGrant.revoked_at.is_(None))
        return [
            f"{g.id}  {g.user.email:<32} {g.client.client_name or g.client.client_id:<24} "
            f"{g.scopes:<14} {'revoked' if g.revoked_at else 'active'}"
            for g in (await session.execute(stmt)).scalars()
        ]

    rows = _with_session(_settings(), work)
    for row in rows:
        typer.echo(row)
    if not rows:
        typer.echo("no grants")


@grants_cli.command("revoke")
def grants_revoke(grant_id: Annotated[str, typer.Argument(help="The grant id.")]) -> None:
    """Revoke a grant: its refresh tokens fail at once, its access tokens within seconds."""
    import uuid

    from app.oauth import service

    try:
        parsed = uuid.UUID(grant_id)
    except ValueError as exc:
        typer.secho("the grant id must be a UUID (see `gatehouse grants list`)", err=True)
        raise typer.Exit(2) from exc

    async def work(session: AsyncSession) -> bool:
        return await service.revoke_grant(session, parsed, reason="admin_revoked")

    if not _with_session(_settings(), work):
        typer.secho(f"no active grant {grant_id}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"revoked grant {grant_id}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; the old one stays published until its tokens have expired."""
    from app.oauth.tokens import rotate_signing_key

    settings = _settings()
    envelope = _envelope(settings)

    async def work(session: AsyncSession) -> tuple[str, list[str]]:
        new, retired = await rotate_signing_key(session, envelope)
        return new.kid, retired

    kid, retired = _with_session(settings, work)
    typer.echo(f"active signing key: {kid}")
    for old in retired:
        typer.echo(f"retired (still published until its tokens expire): {old}")


def _envelope(settings: Settings) -> Envelope:
    from app.kit.envelope import Envelope, LocalKeyProvider

    return Envelope(LocalKeyProvider.from_env_value(settings.vault_keys_value))


@vault_cli.command("status")
def vault_status() -> None:
    """How many stored credentials each master key wraps (the active key is marked)."""
    from app.vault import service as vault

    settings = _settings()
    active = settings.vault_keys_value.split(",", 1)[0].split(":", 1)[0].strip()
    counts = _with_session(settings, vault.status)
    configured = [entry.split(":", 1)[0].strip() for entry in settings.vault_keys_value.split(",")]
    for kid in dict.fromkeys([*configured, *counts]):
        marks = []
        if kid == active:
            marks.append("active")
        if kid not in configured:
            marks.append("NOT CONFIGURED: these credentials cannot be read")
        suffix = f"  ({', '.join(marks)})" if marks else ""
        typer.echo(f"{kid}: {counts.get(kid, 0)} credential(s){suffix}")


@vault_cli.command("rekey")
def vault_rekey(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 100,
) -> None:
    """Re-wrap every credential's data key under the active (first) VAULT_KEYS key.

    Safe while the service runs, and resumable: each batch commits on its own. When it reports
    nothing left under the old key, that key can be removed from VAULT_KEYS.
    """
    import uuid
    from functools import partial

    from app.vault import service as vault

    settings = _settings()
    envelope = _envelope(settings)
    total = unreadable = 0
    after: uuid.UUID | None = None
    while True:
        work = partial(vault.rekey_batch, envelope=envelope, after=after, batch=batch)
        progress = _with_session(settings, work)
        total += progress.rewrapped
        unreadable += progress.unreadable
        if progress.last_id is None:
            break
        after = progress.last_id
        typer.echo(f"re-wrapped {total} so far")
    typer.echo(f"re-wrapped {total} credential(s) under {envelope.provider.active_kid}")
    # The token signing keys are sealed under the same master keys.
    from app.kit.envelope import DecryptionError
    from app.oauth.tokens import rewrap_signing_keys

    try:
        keys = _with_session(settings, partial(rewrap_signing_keys, envelope=envelope))
    except DecryptionError:
        typer.secho("a signing key could not be opened with the configured keys", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"re-wrapped {keys} signing key(s) under {envelope.provider.active_kid}")
    if unreadable:
        typer.secho(
            f"{unreadable} credential(s) could not be opened with the configured keys "
            "(their users must reconnect them)",
            err=True,
            fg="yellow",
        )
        raise typer.Exit(1)


@cli.command("purge")
def purge_command() -> None:
    """Delete expired codes, tokens, sessions, stale registrations and old keys."""
    from app.oauth.service import purge
    from app.oauth.tokens import publish_window

    settings = _settings()
    window = publish_window(settings.access_token_ttl)

    async def work(session: AsyncSession) -> dict[str, int]:
        return await purge(session, settings, window)

    counts = _with_session(settings, work)
    typer.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


def main() -> None:
    cli()
