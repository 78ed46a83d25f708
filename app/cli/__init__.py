"""The ``prefloop`` command line (SPEC §8).

Each module of this package that defines ``register(app)`` adds its commands; heavy
imports (torch, the web app) happen inside the commands so ``prefloop --help`` is fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="prefloop",
    help="Prefloop: rank model completions, measure agreement, export pairs, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    app()
