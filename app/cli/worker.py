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
            "signal %s: stopping after the current logging step", signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _parse_kinds(kinds: str) -> list[str]:
    from training.worker import KINDS

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        raise fail(f"--kinds takes some of {','.join(KINDS)}, got {kinds!r}", 2)
    return chosen


def worker(
    gpus: Annotated[str | None, typer.Option(
        help="GPUs to use, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES); default: the "
             "environment's CUDA_VISIBLE_DEVICES.")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Run at most one queued run, then exit (at once if none is queued).")]
    = False,
    name: Annotated[str | None, typer.Option(
        help="Worker name shown on runs; default HOSTNAME-PID.")] = None,
    poll_seconds: Annotated[float, typer.Option(
        min=0.05, help="Seconds between looks at an empty queue.")] = 5.0,
    kinds: Annotated[str, typer.Option(
        help="Kinds of run this worker serves, comma-separated.")] = "reward,dpo,ppo,generate",
) -> None:
    """Claim and run training runs until stopped (SIGTERM/SIGINT stop cleanly)."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus  # before anything imports torch
    served = _parse_kinds(kinds)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.db import migrate
    from app.db.engine import make_engine, make_sessionmaker
    from app.services import next_round
    from training.worker import Worker

    with database_url(settings) as url:
        engine = make_engine(url, pool_size=4)
        try:
            migrate.upgrade(engine)
            sessions = make_sessionmaker(engine)

            def on_success(run: Any, result: Any) -> None:
                if run.kind == "generate":
                    with sessions() as session:
                        next_round.create_round(session, run.id, result.artifact)

            runner = Worker(engine, name=name or f"{socket.gethostname()}-{os.getpid()}",
                            data_dir=settings.data_dir.resolve(),
                            heartbeat_seconds=settings.worker_heartbeat_seconds,
                            stale_seconds=settings.worker_stale_seconds,
                            poll_seconds=poll_seconds, kinds=served, on_success=on_success)
            _install_stop_handlers(runner.stop)
            typer.echo(f"worker {runner.name} serving {','.join(served)} "
                       f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'all')})")
            executed = runner.run_forever(once=once)
            typer.echo(f"worker {runner.name} stopped after {executed} run(s)")
        finally:
            engine.dispose()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
