"""`prefloop import` and `prefloop demo` (SPEC §8)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.data import PROJECT_HELP, find_project
from app.cli.runtime import database_url, domain_errors, load_settings, open_db
from app.settings import Settings

FORMAT_HELP = "jsonl, csv or pairs (default: csv for *.csv files, else jsonl)."


def _guess_format(path: Path) -> str:
    return "csv" if path.name.lower().endswith((".csv", ".csv.gz")) else "jsonl"


@domain_errors
def import_command(
    project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
    file: Annotated[
        Path, typer.Argument(help="The file (plain or gzip).", exists=True, dir_okay=False)
    ],
    format: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    labeler: Annotated[
        str, typer.Option(help="External labeler (ext:…) of the judgments pairs carry.")
    ] = "ext:pairs",
) -> None:
    """Import prompts into a project, all or nothing, as the API does."""
    from app.domain.errors import ValidationFailed
    from app.services import importing

    with open_db(load_settings()) as sessions, sessions() as session:
        target = find_project(session, project)
        try:
            with file.open("rb") as stream:
                result = importing.import_file(
                    session, target, stream, format or _guess_format(file), labeler=labeler
                )
        except ValidationFailed as exc:
            for d in exc.details:
                where = f"line {d['line']}: " if d.get("line") else ""
                typer.echo(f"{where}{d['field']}: {d['message']}", err=True)
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"imported {result.imported}, skipped {result.skipped}")


def _login_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}/login"


@domain_errors
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after seeding (default), or stop.")
    ] = True,
) -> None:
    """Seed a demo project (real prompts), an admin and two labelers; print the logins;
    serve."""
    from app.cli.core import run_server
    from app.db import migrate
    from app.db.engine import make_engine, make_sessionmaker
    from app.services.demo import seed_demo

    settings = load_settings()
    with database_url(settings) as url:
        engine = make_engine(url, pool_size=1)
        try:
            migrate.upgrade(engine)
            with make_sessionmaker(engine)() as session:
                seed = seed_demo(session)
        finally:
            engine.dispose()
        typer.echo(
            f"Demo project #{seed.project_id}: imported {seed.imported} prompts, "
            f"skipped {seed.skipped} already there."
        )
        typer.echo(f"Open {_login_url(settings)} and log in as:")
        for login in seed.logins:
            password = login.password or "(existing user: password unchanged)"
            typer.echo(f"  {login.username:<6} {login.role:<8} {password}")
        typer.echo("WARNING: these are demo credentials; never use them on a server others reach.")
        if serve:
            run_server(settings, url)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("demo")(demo)
