"""Score runs and per-account scores.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``churnlens_score_runs`` and ``churnlens_scores`` (index on account and date)."""
    op.create_table(
        "churnlens_score_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("n_accounts", sa.Integer(), nullable=False),
        sa.Column("data_digest", sa.String(64), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_churnlens_score_runs")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "churnlens_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("churn_probability", sa.Float(), nullable=False),
        sa.Column("risk_band", sa.String(16), nullable=False),
        sa.Column("health_score", sa.Integer(), nullable=False),
        sa.Column("touch_tier", sa.String(32), nullable=False),
        sa.Column("arr", sa.Float(), nullable=True),
        sa.Column("arr_at_risk", sa.Float(), nullable=True),
        sa.Column("top_reasons", sa.Text(), nullable=False),
        sa.Column("playbooks", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("csm_id", sa.String(255), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("plan", sa.String(255), nullable=True),
        sa.CheckConstraint(
            "churn_probability >= 0 AND churn_probability <= 1",
            name=op.f("ck_churnlens_scores_probability"),
        ),
        sa.CheckConstraint(
            "health_score >= 0 AND health_score <= 100",
            name=op.f("ck_churnlens_scores_health_score"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["churnlens_score_runs.run_id"],
            name=op.f("fk_churnlens_scores_run_id_churnlens_score_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "account_id", name=op.f("pk_churnlens_scores")),
    )
    op.create_index(
        op.f("ix_churnlens_scores_account_id_as_of"),
        "churnlens_scores",
        ["account_id", "as_of"],
    )


def downgrade() -> None:
    """Drop both tables (every stored score is lost)."""
    op.drop_index(op.f("ix_churnlens_scores_account_id_as_of"), table_name="churnlens_scores")
    op.drop_table("churnlens_scores")
    op.drop_table("churnlens_score_runs")
