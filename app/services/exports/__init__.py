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
import gc
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Export, Project, User
from app.domain.errors import NotFound
from app.domain.export_filters import ExportFilters
from app.domain.pair_shapes import MAX_SHAPES, PairBlocks, Shape, ranked_texts
from app.domain.pairs import ALL, CONSENSUS, manifest_method_description
from app.domain.project_summary import FigureAccumulator
from app.services.exports.stream import SEP, LabelerNames, PromptRow, iter_prompt_rows
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
    lines = _PromptLines(strategy, filters, names)
    digest = hashlib.sha256()
    pending: list[str] = []
    with path.open("wb", buffering=WRITE_BUFFER) as out:

        def flush() -> None:
            data = "".join(pending).encode("utf-8")
            out.write(data)
            digest.update(data)
            pending.clear()

        for batch in _batches(rows, FLUSH_PROMPTS):
            lines.add(batch, pending)
            flush()
        out.flush()
        os.fsync(out.fileno())
    written = lines.written
    written.sha256 = digest.hexdigest()
    return written


def _batches(rows: Iterable[PromptRow], size: int) -> Iterator[list[PromptRow]]:
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield batch


class _PromptLines:
    """The lines of prompt rows (``stream.PromptRow``) and the counts and figures of the export.

    A prompt's lines and figures depend on its texts only through one template fill; the
    rest depends on its completion ids, gold and judgments. So a prompt of a text prompt
    whose labelers are counted, not named (strategy ``all`` and ``exclude_labelers``
    name them), is looked up by its ``(gold, ids, rankings, rejects)`` strings as fetched:
    the first such prompt takes the general path (``PairBlocks``,
    ``FigureAccumulator.add_prompt``), every later one costs a dictionary lookup and a
    template fill with the JSON texts as fetched, for the same bytes."""

    def __init__(self, strategy: str, filters: ExportFilters, names: Mapping[int, str]) -> None:
        self.blocks = PairBlocks(strategy, filters)
        self.names = names
        self.by_name = strategy == ALL or bool(filters.exclude_labelers)
        self.written = PairsWritten()
        self.seen: dict[tuple[Any, ...], tuple[Shape, tuple[Any, ...]]] = {}

    def add(self, rows: list[PromptRow], out: list[str]) -> None:
        """Append the lines of ``rows`` to ``out`` and count them."""
        if self.by_name:
            for row in rows:
                self._general(row, out)
            return
        seen, checked, written = self.seen, self.written.agreement.add_checked, self.written
        prompts = judgments = pairs = 0
        for row in rows:
            prompt_id, text, _, gold, ids, texts, labelers, rankings, rejects = row
            if text is None or ids is None:
                self._general(row, out)
                continue
            key = (gold, ids, rankings, rejects)
            known = seen.get(key)
            if known is None:
                known = self._first(key, row)
            elif labelers is not None:
                checked(known[1], labelers.split(","))
            shape = known[0]
            if shape.rows:
                out.append(shape.template % shape.fetched((text, prompt_id, *texts.split(SEP))))
                prompts += 1
                judgments += len(rejects)
                pairs += shape.rows
        written.prompts += prompts
        written.judgments += judgments
        written.pairs += pairs

    def _first(self, key: tuple[Any, ...], row: PromptRow) -> tuple[Shape, tuple[Any, ...]]:
        """A prompt row of a new key: its figures added, its shape and pattern remembered
        (also under the key of its sorted rankings, which judgments in another order
        share)."""
        prompt_id, ids, labelers, rankings, rejects = _decoded(row)
        gold = row[3]
        ranked = ranked_texts(rankings, rejects)
        if len(self.seen) >= MAX_SHAPES:
            self.seen.clear()
        by_ranked = (gold, row[4], len(labelers), *ranked)
        known = self.seen.get(by_ranked)
        if known is None:
            self.written.agreement.add_prompt(prompt_id, labelers, ranked, gold)
            shape = self.blocks.shape(ids, labelers, rankings, rejects, gold is not None, ranked)
            known = self.seen[by_ranked] = (shape, (gold, *ranked))
        elif labelers:
            self.written.agreement.add_checked(known[1], labelers)
        self.seen[key] = known
        return known

    def _general(self, row: PromptRow, out: list[str]) -> None:
        _, text, chat, gold, _, texts, _, _, _ = row
        prompt_id, ids, labelers, rankings, rejects = _decoded(row)
        ranked = ranked_texts(rankings, rejects)
        written, blocks = self.written, self.blocks
        written.agreement.add_prompt(prompt_id, labelers, ranked, gold)
        if self.by_name:
            labelers = [self.names[int(labeler)] for labeler in labelers]
        prompt = chat if text is None else json.loads(text)
        values = [json.loads(t) for t in texts.split(SEP)] if texts is not None else []
        judgments = (labelers, rankings, rejects)
        lines, count = blocks.lines(
            prompt_id, prompt, ids, values, judgments, gold is not None, ranked
        )
        if count:
            out.append(lines)
            written.prompts += 1
            written.judgments += blocks.kept
            written.pairs += count


@lru_cache(maxsize=4096)
def _completion_ids(joined: str) -> tuple[str, ...]:
    """Completion ids from their joined JSON (prompts of a project repeat a few)."""
    return tuple(json.loads(cid) for cid in joined.split(SEP))


def _decoded(
    row: PromptRow,
) -> tuple[str, Sequence[str], list[str], list[str | None], list[bool]]:
    """A row's prompt id, completion ids, labeler ids (as text), rankings and reject_all
    flags as lists (``stream.PromptRow`` has them joined)."""
    prompt_id, _, _, _, ids, _, labelers, rankings, rejects = row
    return (
        json.loads(prompt_id),
        _completion_ids(ids) if ids is not None else (),
        labelers.split(",") if labelers is not None else [],
        [r or None for r in rankings.split(SEP)] if rankings is not None else [],
        [flag == "t" for flag in rejects] if rejects is not None else [],
    )


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
        with old_objects_out_of_gc_sight():
            written = write_pairs(stream, folder / PAIRS_FILE, export.strategy, filters, names)
    finally:
        stream.close()
    manifest = build_manifest(export, project, filters, written)
    _write_json(folder / MANIFEST_FILE, manifest)
    return manifest


@contextlib.contextmanager
def old_objects_out_of_gc_sight() -> Iterator[None]:
    """Keep the objects that exist before the block out of the cyclic GC's sight during it.

    An export allocates millions of short-lived containers (rows and their arrays), so
    the GC keeps running, and each full collection walks every object of the process:
    about a third of the export's CPU. ``gc.freeze`` moves the existing objects to the
    permanent generation (nothing is freed or lost: they are only not examined) and
    ``gc.unfreeze`` gives them back to the oldest generation afterwards, so garbage among
    them is collected as before, only later. Objects made during the block are
    collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
