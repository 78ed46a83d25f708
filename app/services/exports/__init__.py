"""Export snapshots (SPEC §5): ``DATA_DIR/exports/<id>/`` holds ``manifest.json`` and
``pairs.jsonl``; the ``exports`` row mirrors the manifest.

One use case serves the API and the CLI. The pairs are streamed: prompts come in id
order through a server-side cursor (:mod:`app.services.exports.stream`, one statement,
so one snapshot), each becomes canonical JSON lines (``app.domain.pair_shapes``: the
bytes of ``app.domain.pairs.pair_lines``, planned once per distinct judgment pattern)
written and hashed on the fly. The agreement figures of the manifest are computed from
the same stream (in constant memory, without bootstrap intervals), so they describe
exactly the judgments the pairs came from.

Atomicity: the files are written into a temporary folder beside the final one, which
is renamed to ``<id>`` before the row is committed; if anything fails, the row is
rolled back and the folder removed. Same data and settings give byte-identical
``pairs.jsonl`` (and the same manifest apart from ``id`` and ``created_at``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Export, Project, User
from app.domain.errors import NotFound
from app.domain.export_filters import ExportFilters
from app.domain.pair_shapes import PairBlocks, ranked_texts
from app.domain.pairs import ALL, CONSENSUS, manifest_method_description
from app.domain.project_summary import FigureAccumulator
from app.services.exports.stream import LabelerNames, PromptRow, iter_prompt_rows
from app.settings import Settings

FORMAT_VERSION = 1
PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"
EXPORT_FILES = (PAIRS_FILE, MANIFEST_FILE)
COUNTS_DEFINITION = (
    "prompts and judgments (after exclude_labelers) that gave at least one row; pairs = rows"
)
AGREEMENT_DEFINITION = (
    "SPEC §6 project figures over every judgment of the project at export time (filters do "
    "not apply); bootstrap intervals: GET /api/v1/projects/{id}/agreement"
)
WRITE_BUFFER = 1 << 20
FLUSH_PROMPTS = 256  # prompts' lines encoded, written and hashed at a time
STAGING_PREFIX = ".tmp-export-"
STALE_STAGING_S = 24 * 3600


@dataclass
class PairsWritten:
    """What streaming the pairs produced: counts, digest, and the project's figures."""

    prompts: int = 0
    judgments: int = 0
    pairs: int = 0
    sha256: str = ""
    agreement: FigureAccumulator = field(default_factory=FigureAccumulator)


def write_pairs(
    rows: Iterable[PromptRow],
    path: Path,
    strategy: str,
    filters: ExportFilters,
    names: Mapping[int, str],
) -> PairsWritten:
    """Write the lines of every prompt row to ``path`` (hashing as it goes) and fsync it.

    ``names`` maps labeler ids to usernames; they are looked up only where they matter
    (strategy ``all`` and ``exclude_labelers``)."""
    written = PairsWritten()
    blocks = PairBlocks(strategy, filters)
    by_name = strategy == ALL or bool(filters.exclude_labelers)
    digest = hashlib.sha256()
    pending: list[str] = []
    with path.open("wb", buffering=WRITE_BUFFER) as out:

        def flush() -> None:
            data = "".join(pending).encode("utf-8")
            out.write(data)
            digest.update(data)
            pending.clear()

        for prompt_id, text, chat, gold, ids, texts, labelers, rankings, rejects in rows:
            labelers, rankings, rejects = labelers or (), rankings or (), rejects or ()
            ranked = ranked_texts(rankings, rejects)
            written.agreement.add_prompt(prompt_id, labelers, ranked, gold)
            if by_name:
                labelers = [names[labeler] for labeler in labelers]
            prompt = chat if text is None else text
            judgments = (labelers, rankings, rejects)
            lines, count = blocks.lines(
                prompt_id, prompt, ids, texts, judgments, gold is not None, ranked
            )
            if not count:
                continue
            pending.append(lines)
            written.prompts += 1
            written.judgments += blocks.kept
            written.pairs += count
            if len(pending) >= FLUSH_PROMPTS:
                flush()
        flush()
        out.flush()
        os.fsync(out.fileno())
    written.sha256 = digest.hexdigest()
    return written


def build_manifest(
    export: Export, project: Project, filters: ExportFilters, written: PairsWritten
) -> dict[str, Any]:
    """The manifest.json content (SPEC §5) plus ``id`` and ``method``."""
    method = manifest_method_description(export.strategy)
    return {
        "format_version": FORMAT_VERSION,
        "id": export.id,
        "project": {"id": project.id, "name": project.name},
        "created_at": export.created_at.isoformat().replace("+00:00", "Z"),
        "strategy": export.strategy,
        "filters": filters.to_dict(),
        "counts": {
            "prompts": written.prompts,
            "judgments": written.judgments,
            "pairs": written.pairs,
        },
        "agreement": written.agreement.summary(),
        "sha256": written.sha256,
        "method": {
            **method,
            "counts": COUNTS_DEFINITION,
            "project_agreement": AGREEMENT_DEFINITION,
        },
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def _fill_folder(
    session: Session, folder: Path, export: Export, project: Project, filters: ExportFilters
) -> dict[str, Any]:
    names = LabelerNames(session, project.id)
    stream = iter_prompt_rows(session, project.id)
    try:
        written = write_pairs(stream, folder / PAIRS_FILE, export.strategy, filters, names)
    finally:
        stream.close()
    manifest = build_manifest(export, project, filters, written)
    _write_json(folder / MANIFEST_FILE, manifest)
    return manifest


def remove_stale_staging(root: Path, older_than_s: float = STALE_STAGING_S) -> None:
    """Remove staging folders left by exports that were killed mid-way (a day old)."""
    limit = time.time() - older_than_s
    for folder in root.glob(f"{STAGING_PREFIX}*"):
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < limit:
                shutil.rmtree(folder)


def create_export(
    session: Session,
    settings: Settings,
    project: Project,
    strategy: str = CONSENSUS,
    filters: Any = None,
    *,
    created_by: User | None = None,
) -> Export:
    """Snapshot the project's pairs into ``DATA_DIR/exports/<id>/`` and record it.

    ``filters`` is the JSON object of SPEC §4 (None = defaults). Bad input raises
    ValidationFailed naming ``strategy`` or ``filters.<key>``.
    """
    manifest_method_description(strategy)  # validates the strategy
    parsed = ExportFilters.from_dict(filters)
    root = settings.exports_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(root)
    export = Export(
        project_id=project.id,
        strategy=strategy,
        filters=parsed.to_dict(),
        manifest={},
        path="",
        created_by=created_by.id if created_by is not None else None,
        created_at=datetime.now(UTC),
    )
    session.add(export)
    session.flush()
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    final = root / str(export.id)
    placed = False
    try:
        export.manifest = _fill_folder(session, staging, export, project, parsed)
        staging.rename(final)
        placed = True
        export.path = str(final)
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(final if placed else staging, ignore_errors=True)
        raise
    return export


def list_exports(session: Session, project_id: int) -> list[Export]:
    """The project's exports, newest first."""
    return list(
        session.scalars(
            select(Export).where(Export.project_id == project_id).order_by(Export.id.desc())
        )
    )


def get_export(session: Session, export_id: int) -> Export:
    export = session.get(Export, export_id)
    if export is None:
        raise NotFound(f"export {export_id} not found")
    return export


def export_file(export: Export, name: str) -> Path:
    """The path of one of the export's two files; NotFound if it is gone from disk."""
    if name not in EXPORT_FILES:
        raise NotFound(f"an export has no file {name!r}")
    path = Path(export.path) / name
    if not export.path or not path.is_file():
        raise NotFound(f"the files of export {export.id} are missing from the data folder")
    return path


def copy_export(export: Export, out_dir: Path) -> list[Path]:
    """Copy the export's two files into ``out_dir`` (each replaced atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in EXPORT_FILES:
        target = out_dir / name
        partial = out_dir / f".{name}.partial"
        shutil.copyfile(export_file(export, name), partial)
        os.replace(partial, target)
        copied.append(target)
    return copied
