"""Export snapshots (SPEC §5): the files live in DATA_DIR/exports/<id>/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class Export(Base):
    """An immutable snapshot of a project's pairs; ``manifest`` mirrors manifest.json."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    strategy: Mapped[str] = mapped_column(String(32))
    filters: Mapped[dict[str, Any]]
    manifest: Mapped[dict[str, Any]]
    path: Mapped[str] = mapped_column(String(1000))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
