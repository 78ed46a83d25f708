"""`prefloop serve`, `prefloop db upgrade`, `prefloop user create`, `prefloop token create`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli.runtime import database_url, domain_errors, fail, load_settings, open_db
from app.db import migrate
from app.db.engine import make_engine
from app.settings import Settings

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def run_server(settings: Settings, url: str) -> None:
    """Apply migrations (under an advisory lock), then serve with uvicorn."""
    import uvicorn

    engine = make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_workers,
        log_level=settings.log_level,
        proxy_headers=True,
    )


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: PORT, 8000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="uvicorn worker processes (default: WEB_WORKERS, 1)."),
    ] = None,
) -> None:
    """Run the web app (embedded PostgreSQL when DATABASE_URL is unset); migrates first."""
    flags = {"host": host, "port": port, "web_workers": workers}
    settings = load_settings(**{k: v for k, v in flags.items() if v is not None})
    with database_url(settings) as url:
        run_server(settings, url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations."""
    settings = load_settings()
    with open_db(settings):
        typer.echo("database is at the latest migration")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("create")
@domain_errors
def user_create(
    name: Annotated[str, typer.Argument(help="The username.")],
    role: Annotated[str, typer.Option(help="admin or labeler.")] = "labeler",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user (password from a prompt, or --password-stdin)."""
    from app.services.accounts import users

    if role not in ("admin", "labeler"):
        raise fail("--role must be admin or labeler", 2)
    password = _read_password(password_stdin)
    with open_db(load_settings()) as sessions, sessions() as session:
        user = users.create_user(session, name, password, role)
        typer.echo(f"created {user.role} {user.username!r}")


@token_app.command("create")
@domain_errors
def token_create(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="A name to recognise the token by.")] = "cli",
) -> None:
    """Print a new API token for a user (shown once; stored hashed)."""
    from app.services.accounts import tokens

    with open_db(load_settings()) as sessions, sessions() as session:
        typer.echo(tokens.create_token(session, name, label))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
