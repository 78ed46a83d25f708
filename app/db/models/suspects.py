"""The admin's decisions on judgments a suspects run flagged (issue 12 §4)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at_column


class SuspectDecision(StrEnum):
    """accepted: the judgment stands as labeled. sent_back: its prompt's target k was raised
    by one, so the assignment hands it out again."""

    accepted = "accepted"
    sent_back = "sent_back"


class SuspectReview(Base):
    """One decision per judgment (a reviewed judgment leaves every run's suspects list);
    ``run_id`` is the run that flagged it."""

    __tablename__ = "suspect_reviews"
    __table_args__ = (
        CheckConstraint(
            "decision IN ({})".format(", ".join(f"'{d.value}'" for d in SuspectDecision)),
            name="decision",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    judgment_id: Mapped[int] = mapped_column(
        ForeignKey("judgments.id", ondelete="CASCADE"), unique=True
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL"), index=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
