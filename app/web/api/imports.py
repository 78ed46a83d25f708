"""``POST /api/v1/projects/{id}/import`` (SPEC §3, §7).

The body is the file itself (``application/x-ndjson``, ``text/csv``, anything else read
as bytes) or a multipart form with a ``file`` part; it is streamed to a temporary file,
never held in memory, then handed to the import service.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from app.domain.errors import ValidationFailed
from app.domain.importing.formats import DEFAULT_PAIRS_LABELER, FORMATS
from app.services import importing
from app.services.accounts import policy
from app.web.body_limit import streams_body
from app.web.deps import AdminUser, SessionDep
from app.web.inputs import DbId
from app.web.openapi import one_of

router = APIRouter(prefix="/api/v1/projects", tags=["import"])

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
_SPOOL_BYTES = 1024 * 1024
_MULTIPART = ("multipart/form-data",)


@dataclass
class Upload:
    """A received file: its bytes (seekable), name and the format its type suggests."""

    file: BinaryIO
    filename: str
    content_type: str
    form: dict[str, Any]

    def format(self, requested: str | None) -> str:
        """The requested format, else the form's choice, else csv for CSV files, else jsonl."""
        chosen = requested or self.form.get("format") or None
        if chosen:
            return str(chosen)
        csv_type = self.content_type.startswith(("text/csv", "application/csv"))
        return "csv" if csv_type or self.filename.lower().endswith((".csv", ".csv.gz")) else "jsonl"


def _too_large() -> HTTPException:
    limit = MAX_UPLOAD_BYTES // 2**20
    return HTTPException(413, f"the file is larger than {limit} MiB; import it in parts")


async def _multipart(request: Request) -> Upload:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed.single("file", "choose a file to import")
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise _too_large()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await upload.seek(0)
    return Upload(upload.file, upload.filename or "", upload.content_type or "", fields)


async def received_upload(request: Request) -> AsyncIterator[Upload]:
    """The request's file, spooled to disk as it arrives (413 past MAX_UPLOAD_BYTES)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_MULTIPART):
        yield await _multipart(request)
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise _too_large()
            spool.write(chunk)
        spool.seek(0)
        yield Upload(spool, "", content_type, {})  # type: ignore[arg-type]


UploadDep = Annotated[Upload, Depends(received_upload)]


class ImportOut(BaseModel):
    """The counts of an import, read from the service's ``ImportResult``."""

    model_config = ConfigDict(from_attributes=True)

    imported: int
    skipped: int


@router.post("/{project_id}/import", response_model=ImportOut)
@streams_body
def import_prompts(
    project_id: DbId,
    db: SessionDep,
    user: AdminUser,
    upload: UploadDep,
    format: Annotated[
        str | None,
        Query(description=f"one of {', '.join(FORMATS)}"),
        one_of(FORMATS, nullable=True),
    ] = None,
    labeler: Annotated[
        str, Query(description="external labeler of the judgments that pairs carry")
    ] = DEFAULT_PAIRS_LABELER,
) -> ImportOut:
    """Import prompts; all or nothing (422 lists every problem with line and field)."""
    project = policy.visible_project(db, user, project_id)
    result = importing.import_file(db, project, upload.file, upload.format(format), labeler=labeler)
    return ImportOut.model_validate(result)
