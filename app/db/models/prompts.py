"""Prompts and their completions (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class Prompt(Base):
    """One prompt to be ranked.

    ``slots_taken`` counts open assignments plus judgments and never exceeds
    ``target_labels`` (k, raised by adaptive overlap) for non-gold prompts: the
    database itself refuses an over-assignment.
    """

    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        CheckConstraint("slots_taken >= 0", name="slots_nonnegative"),
        CheckConstraint("is_gold OR slots_taken <= target_labels", name="slots_within_target"),
        Index("ix_prompts_queue", "project_id", "is_gold", "slots_taken", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[Any]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", default=dict, server_default=text("'{}'::jsonb")
    )
    gold: Mapped[list[Any] | None]
    is_gold: Mapped[bool] = mapped_column(default=False, server_default=false())
    target_labels: Mapped[int] = mapped_column(SmallInteger)
    slots_taken: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    n_judgments: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    agreement: Mapped[float | None] = mapped_column(Float)
    kendall_w: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()


class Completion(Base):
    """One model completion of a prompt; ``position`` is its order in the import."""

    __tablename__ = "completions"
    __table_args__ = (UniqueConstraint("prompt_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
