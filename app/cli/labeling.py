"""`prefloop import` and `prefloop demo` (SPEC §8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

import typer

from app.cli.data import PROJECT_HELP, find_project
from app.cli.runtime import database_url, domain_errors, load_settings, open_db
from app.settings import Settings

if TYPE_CHECKING:
    from app.services.demo import DemoSeed

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


TRAIN_MODULES = ("torch", "transformers", "trl", "peft", "tokenizers")


def _train_extra_missing() -> list[str]:
    import importlib.util

    return [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]


def _build_tiny_model(settings: Settings) -> Path | None:
    """The demo's offline base model, DATA_DIR/models/tiny-llama (built once), or None
    when the ``train`` extra is not installed."""
    missing = _train_extra_missing()
    if missing:
        typer.echo(
            f"Training: not available ({', '.join(missing)} missing). Install the extra with "
            "`pip install -e '.[train]'` (or `make demo`) and run `prefloop demo` again."
        )
        return None
    from app.services.demo import demo_texts, tiny_model_folder
    from training.tiny import build_tiny_causal_lm

    folder = tiny_model_folder(settings)
    if not (folder / "config.json").is_file():
        typer.echo(f"Building the tiny demo model in {folder} …")
    return build_tiny_causal_lm(folder, texts=demo_texts())


def _start_worker(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    """One ``prefloop worker`` in a child process, on the same database and DATA_DIR."""
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(settings.data_dir.resolve())}
    command = [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "worker",
        "--name",
        "demo-worker",
        "--poll-seconds",
        "2",
    ]
    return subprocess.Popen(command, env=env)


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: the worker stops cleanly (a run is queued again)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _training_hint(settings: Settings, seed: DemoSeed, tiny: Path | None) -> None:
    """The link that fills the run form: all-MiniLM-L6-v2 on the public pairs when it is in
    MODELS_DIR, else the tiny random model on the reviewed prompts (and how to get the real one)."""
    from app.services.demo import REAL_MODEL_PRESET, real_model_folder, real_model_hint

    if tiny is None or seed.export_id is None:
        return
    real = real_model_folder(settings)
    if real is not None and seed.public_export_id is not None:
        export_id, model, preset = seed.public_export_id, real, REAL_MODEL_PRESET
        note = "about a minute on a laptop CPU; the run page shows its held-out accuracy"
    else:
        export_id, model, preset = seed.export_id, tiny, "tiny-cpu"
        note = real_model_hint(settings)
    typer.echo(
        f"Training: log in as admin, open /admin/runs, start a 'reward' run on export "
        f"#{export_id} with base model {model} and preset {preset}"
    )
    query = urlencode(
        {"kind": "reward", "export_id": export_id, "base_model": str(model), "preset": preset}
    )
    typer.echo(f"  (pre-filled: {_login_url(settings).removesuffix('/login')}/admin/runs?{query})")
    typer.echo(f"  {note}")


@domain_errors
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after seeding (default), or stop.")
    ] = True,
    worker: Annotated[
        bool,
        typer.Option("--worker/--no-worker", help="Run one training worker while serving."),
    ] = True,
) -> None:
    """Seed a demo project (real prompts), an admin and two labelers, a reviewed project with
    its export and a tiny offline model; print the logins; serve with a training worker."""
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
                seed = seed_demo(session, settings=settings)
        finally:
            engine.dispose()
        typer.echo(
            f"Demo project #{seed.project_id}: imported {seed.imported} prompts, "
            f"skipped {seed.skipped} already there."
        )
        typer.echo(
            f"Reviewed project #{seed.reviewed_project_id} (two reviewers' judgments): "
            f"export #{seed.export_id} holds {seed.export_pairs} pairs."
        )
        typer.echo(
            f"Public pairs project #{seed.public_project_id} (PandaLM, three annotators): "
            f"export #{seed.public_export_id} holds {seed.public_export_pairs} pairs."
        )
        model = _build_tiny_model(settings)
        typer.echo(f"Open {_login_url(settings)} and log in as:")
        for login in seed.logins:
            password = login.password or "(existing user: password unchanged)"
            typer.echo(f"  {login.username:<6} {login.role:<8} {password}")
        typer.echo("WARNING: these are demo credentials; never use them on a server others reach.")
        _training_hint(settings, seed, model)
        if not serve:
            return
        process = None
        if worker and model is not None:
            from app.db.embedded import install_sigterm_handler

            install_sigterm_handler()  # SIGTERM ends uvicorn, then runs the finally below
            process = _start_worker(settings, url)
        try:
            run_server(settings, url)
        finally:
            if process is not None:
                _stop_worker(process)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("demo")(demo)
