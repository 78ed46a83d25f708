"""Suspected mislabels: the ``suspects`` run kind and the admin's decisions on flagged
judgments (issue 12 §4).

The CHECK on ``training_runs.kind`` is rebuilt from ``training.schema.RunKind`` as it stands
in this revision; ``suspect_reviews`` holds one decision (accepted | sent_back) per judgment.
Downgrading deletes the suspects runs (the older constraint refuses their kind).

Revision ID: 0003_sus
Revises: 0003_rel_sessions
Create Date: 2026-12-01 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sus"
down_revision = "0003_rel_sessions"
branch_labels = None
depends_on = None

KINDS_BEFORE = ("reward", "dpo", "ppo", "generate")
KINDS_AFTER = (*KINDS_BEFORE, "suspects")


def _kind_check(kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_training_runs_kind"), "training_runs", type_="check")
    op.create_check_constraint(
        op.f("ck_training_runs_kind"),
        "training_runs",
        "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds)),
    )


def upgrade() -> None:
    _kind_check(KINDS_AFTER)
    op.create_table(
        "suspect_reviews",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("judgment_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "decision IN ('accepted', 'sent_back')", name=op.f("ck_suspect_reviews_decision")
        ),
        sa.ForeignKeyConstraint(
            ["judgment_id"],
            ["judgments.id"],
            name=op.f("fk_suspect_reviews_judgment_id_judgments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_runs.id"],
            name=op.f("fk_suspect_reviews_run_id_training_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_suspect_reviews_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suspect_reviews")),
        sa.UniqueConstraint("judgment_id", name=op.f("uq_suspect_reviews_judgment_id")),
    )
    op.create_index(op.f("ix_suspect_reviews_run_id"), "suspect_reviews", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_suspect_reviews_run_id"), table_name="suspect_reviews")
    op.drop_table("suspect_reviews")
    op.execute(sa.text("DELETE FROM training_runs WHERE kind = 'suspects'"))
    _kind_check(KINDS_BEFORE)
