"""`prefloop train reward|dpo|ppo` and `prefloop generate`: the training package's own
commands, mounted here. They need no database; torch loads only when one runs."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from training.cli import generate_command, train_app

    app.add_typer(train_app, name="train")
    app.command("generate")(generate_command)
