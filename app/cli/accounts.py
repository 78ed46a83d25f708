"""`prefloop token list|revoke` and `prefloop user deactivate`: managing tokens and people
without database access (issue 11). They join the ``token`` and ``user`` groups of
``core``."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.core import token_app, user_app
from app.cli.runtime import domain_errors, load_settings, open_db


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@token_app.command("list")
@domain_errors
def token_list(
    user: Annotated[
        str | None, typer.Argument(help="Only this user's tokens (default: everyone's).")
    ] = None,
) -> None:
    """List API tokens (never their secrets): id, user, name, prefix, created, revoked,
    last used (to the minute; new last, so scripts reading the older columns still work)."""
    from app.services.accounts import tokens, users

    with open_db(load_settings()) as sessions, sessions() as session:
        owner = users.get_user(session, user).id if user else None
        rows = tokens.list_tokens(session, owner)
        typer.echo("id\tuser\tname\tprefix\tcreated\trevoked\tlast_used")
        for t in rows:
            when = [_when(t.created_at), _when(t.revoked_at), _when(t.last_used_at)]
            cells = [t.id, t.username, t.name, t.prefix, *when]
            typer.echo("\t".join(str(c) for c in cells))


@token_app.command("revoke")
@domain_errors
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `prefloop token list`).")],
) -> None:
    """Revoke a token; requests carrying it are refused at once."""
    from app.services.accounts import tokens

    with open_db(load_settings()) as sessions, sessions() as session:
        tokens.revoke_token(session, token_id)
        typer.echo(f"revoked token {token_id}")


@user_app.command("deactivate")
@domain_errors
def user_deactivate(name: Annotated[str, typer.Argument(help="The username.")]) -> None:
    """Deactivate a user: no more logins; their sessions and tokens stop working at once."""
    from app.services.accounts import users

    with open_db(load_settings()) as sessions, sessions() as session:
        user = users.deactivate(session, users.get_user(session, name))
        typer.echo(f"deactivated {user.username!r}")
