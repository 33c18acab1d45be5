"""Score details for the CSM page: recent weekly activity, silent flag, other-language reasons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``churnlens_score_details`` (one optional row per stored score)."""
    op.create_table(
        "churnlens_score_details",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("silent_decline", sa.SmallInteger(), nullable=True),
        sa.Column("activity", sa.Text(), nullable=True),
        sa.Column("translations", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id", "account_id"],
            ["churnlens_scores.run_id", "churnlens_scores.account_id"],
            name=op.f("fk_churnlens_score_details_run_id_churnlens_scores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "account_id", name=op.f("pk_churnlens_score_details")),
    )


def downgrade() -> None:
    """Drop ``churnlens_score_details`` (scores are kept; the page loses activity charts)."""
    op.drop_table("churnlens_score_details")
