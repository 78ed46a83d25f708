"""The README stays true: every setting and every CLI command is documented there."""

from __future__ import annotations

import typer

from app.cli import app as cli_app
from app.services.project_settings import ProjectSettings
from app.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def command_paths(command, prefix: str = "prefloop") -> list[str]:
    """Every leaf command of the Typer app, as the words a user types."""
    if getattr(command, "commands", None):
        paths = []
        for name, sub in command.commands.items():
            paths.extend(command_paths(sub, f"{prefix} {name}"))
        return paths
    return [prefix]


def test_readme_names_every_cli_command():
    paths = command_paths(typer.main.get_command(cli_app))
    assert len(paths) >= 5
    missing = [p for p in paths if f"`{p}" not in README]
    assert missing == [], f"README lacks: {missing}"


def test_readme_names_every_setting():
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == [], f"README lacks settings: {missing}"


def test_readme_names_every_project_setting():
    missing = [name for name in ProjectSettings.model_fields if f"`{name}`" not in README]
    assert missing == [], f"README lacks project settings: {missing}"


def test_readme_shows_the_two_commands():
    assert "make demo" in README and "make test" in README
