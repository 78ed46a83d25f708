"""Labeling queue: a partial index of the prompts that still have a free slot, and at
most one active lease per labeler and project.

`next_task` asks for the open prompt nearest completion (ORDER BY slots_taken DESC, id)
among non-gold prompts with slots_taken < target_labels. The index holds exactly those
rows in that order, so the query stops at its first row however many prompts are full;
the general ix_prompts_queue would scan every full prompt first.

ix_assignments_one_active_lease makes "a labeler holds at most one lease per project" a
database invariant: of two concurrent `next` calls of one labeler, the second fails on it
and is retried by the service, which then returns the first one's lease.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_prompts_open_queue",
        "prompts",
        ["project_id", sa.text("slots_taken DESC"), "id"],
        unique=False,
        postgresql_where=sa.text("NOT is_gold AND slots_taken < target_labels"),
    )
    op.create_index(
        "ix_assignments_one_active_lease",
        "assignments",
        ["project_id", "labeler_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_one_active_lease", table_name="assignments")
    op.drop_index("ix_prompts_open_queue", table_name="prompts")
