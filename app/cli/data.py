"""`prefloop export` and `prefloop agreement` (SPEC §8).

``export`` runs the same service as ``POST /api/v1/projects/{id}/exports``: the
snapshot is registered in the database and stored in ``DATA_DIR/exports/<id>/`` (so a
training run can name it by id), then its two files are copied into ``--out``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli.runtime import domain_errors, fail, load_settings, open_db

PROJECT_HELP = "The project, by name or id."


def find_project(session: Session, ref: str) -> Any:
    """A project by id (all digits) or by name; NotFound otherwise."""
    from app.db.models import Project
    from app.domain.errors import NotFound

    project = (
        session.get(Project, int(ref))
        if ref.isdigit()
        else session.scalar(select(Project).where(Project.name == ref))
    )
    if project is None:
        raise NotFound(f"no project {ref!r} (give its name or id)")
    return project


@domain_errors
def export(
    project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Folder for manifest.json + pairs.jsonl.")],
    strategy: Annotated[
        str, typer.Option(help="consensus, all, best_vs_rest or best_vs_worst.")
    ] = "consensus",
    min_judgments: Annotated[int, typer.Option(help="Skip prompts with fewer judgments.")] = 1,
    min_agreement: Annotated[float, typer.Option(help="Skip rows with lower agreement.")] = 0.0,
    ties: Annotated[str, typer.Option(help="drop tied pairs, or keep them as tie rows.")] = "drop",
    include_gold: Annotated[
        bool, typer.Option("--include-gold", help="Export gold (quality-control) prompts too.")
    ] = False,
    exclude_labeler: Annotated[
        list[str] | None,
        typer.Option("--exclude-labeler", help="Leave this labeler's judgments out (repeatable)."),
    ] = None,
) -> None:
    """Export a project's preference pairs (SPEC §5) into --out, as the API does."""
    from app.services import exports

    if out.exists() and not out.is_dir():
        raise fail(f"--out must be a folder; {out} is a file")
    filters = {
        "min_judgments": min_judgments,
        "min_agreement": min_agreement,
        "ties": ties,
        "include_gold": include_gold,
        "exclude_labelers": list(exclude_labeler or []),
    }
    settings = load_settings()
    with open_db(settings) as sessions, sessions() as session:
        found = find_project(session, project)
        snapshot = exports.create_export(session, settings, found, strategy, filters)
        exports.copy_export(snapshot, out)
    counts = snapshot.manifest["counts"]
    typer.echo(
        f"export {snapshot.id}: {counts['pairs']} pairs from {counts['prompts']} prompts "
        f"({counts['judgments']} judgments) -> {out / exports.PAIRS_FILE}"
    )
    typer.echo(f"sha256 {snapshot.manifest['sha256']}")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_report(report: dict[str, Any]) -> str:
    """The agreement report as two plain-text tables: project figures, then labelers."""
    from app.domain.figures import FIGURES

    figures = []
    for name in FIGURES:
        ci = report["ci95"].get(name)
        interval = f"[{_number(ci[0])}, {_number(ci[1])}]" if ci else "-"
        figures.append([name, _number(report[name]), interval])
    counts = ", ".join(f"{n} {what}" for what, n in report["counts"].items())
    labelers = [
        [
            entry["labeler"],
            str(entry["judgments"]),
            _number(entry["agreement"]),
            _number(entry["gold_accuracy"]),
            _number(entry["position_bias"]),
            _number(entry["median_seconds"]),
            " ".join(f"{other}={_number(k)}" for other, k in entry["kappa"].items()) or "-",
        ]
        for entry in report["per_labeler"]
    ]
    header = ["labeler", "judgments", "agreement", "gold_acc", "pos_bias", "median_s", "kappa"]
    return "\n\n".join(
        [
            _table(["figure", "value", "95% CI"], figures),
            f"counts: {counts}",
            _table(header, labelers) if labelers else "no judgments yet",
        ]
    )


@domain_errors
def agreement(
    project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")] = False,
) -> None:
    """Print a project's agreement figures (SPEC §6) and the per-labeler table."""
    from app.services.agreement import agreement_report

    with open_db(load_settings()) as sessions, sessions() as session:
        report = agreement_report(session, find_project(session, project))
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("agreement")(agreement)
