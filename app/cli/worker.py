"""`prefloop worker`: claim and run training runs until stopped (SPEC §8, §10)."""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Annotated, Any

import typer

from app.cli.runtime import database_url, fail, load_settings


def _install_stop_handlers(stop: Any) -> None:
    """First SIGTERM/SIGINT: stop cleanly (the current run is queued again at its next
    logging step). A second one: the default action (exit at once)."""

    def handler(signum: int, _frame: Any) -> None:
        logging.getLogger("prefloop.worker").warning(
            "signal %s: stopping after the current logging step", signum
        )
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _parse_kinds(kinds: str) -> list[str]:
    from training.schema import RunKind

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in set(RunKind)]
    if unknown or not chosen:
        raise fail(f"--kinds takes some of {','.join(RunKind)}, got {kinds!r}", 2)
    return chosen


def _round_hook(sessions: Any) -> Any:
    """The worker's ``on_success``: a generate run's completions become a labeling project
    (``app.services.runs.next_round``), so the training package never imports the app."""
    from app.services.runs import next_round
    from training.schema import RunKind

    def on_success(run: Any, result: Any) -> None:
        if run.kind == RunKind.generate:
            with sessions() as session:
                next_round.create_round(session, run.id, result.artifact)

    return on_success


def _serve(
    settings: Any,
    url: str,
    *,
    name: str,
    poll_seconds: float,
    kinds: list[str],
    once: bool,
    processes: int | None,
) -> None:
    from app.db import migrate
    from app.db.engine import make_engine, make_sessionmaker
    from training.worker import Worker

    engine = make_engine(url, pool_size=4)
    try:
        migrate.upgrade(engine)
        runner = Worker(
            engine,
            name=name,
            data_dir=settings.data_dir.resolve(),
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            stale_seconds=settings.worker_stale_seconds,
            poll_seconds=poll_seconds,
            kinds=kinds,
            on_success=_round_hook(make_sessionmaker(engine)),
            processes=processes,
        )
        _install_stop_handlers(runner.stop)
        gpus = ", ".join(f"{d.index}: {d.name}" for d in runner.devices) or "none (CPU, gloo)"
        typer.echo(
            f"worker {name} serving {','.join(kinds)} with {runner.processes} process(es) "
            f"a run; GPUs: {gpus}"
        )
        executed = runner.run_forever(once=once)
        typer.echo(f"worker {name} stopped after {executed} run(s)")
    finally:
        engine.dispose()


def worker(
    gpus: Annotated[
        str | None,
        typer.Option(
            help="GPUs to use, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES); default: the "
            "environment's CUDA_VISIBLE_DEVICES."
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run at most one queued run, then exit (at once if none is queued)."
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Worker name shown on runs; default HOSTNAME-PID.")
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at an empty queue.")
    ] = 5.0,
    kinds: Annotated[
        str, typer.Option(help="Kinds of run this worker serves, comma-separated.")
    ] = "reward,dpo,ppo,generate",
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Training processes a run gets (accelerate launch --num_processes); default: "
            "one per GPU, 1 without GPUs (more on CPU: gloo processes).",
        ),
    ] = None,
) -> None:
    """Claim and run training runs until stopped (SIGTERM/SIGINT stop cleanly)."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus  # before anything imports torch
    served = _parse_kinds(kinds)
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with database_url(settings) as url:
        _serve(
            settings,
            url,
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            poll_seconds=poll_seconds,
            kinds=served,
            once=once,
            processes=processes,
        )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
