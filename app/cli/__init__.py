"""The ``prefloop`` command line (SPEC §8).

Each module of this package that defines ``register(app)`` adds its commands; heavy
imports (torch, the web app) happen inside the commands so ``prefloop --help`` is fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated

import typer

from app import __version__

app = typer.Typer(
    name="prefloop",
    help="Prefloop: rank model completions, measure agreement, export pairs, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"prefloop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of ``prefloop`` itself, before any command."""


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    app()
