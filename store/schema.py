"""The score store's tables (SQLAlchemy Core), as the latest migration leaves them.

Every name starts with ``churnlens_`` (tables, indexes, constraints) and Alembic's version table is
``churnlens_alembic_version``, so the store can share a PostgreSQL database with MLflow's tables
and MLflow's own ``alembic_version`` without touching them. The migrations in ``migrations/``
create these tables; this module is what the queries use (and what ``alembic revision
--autogenerate`` compares the database with).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

PREFIX = "churnlens_"
VERSION_TABLE = "churnlens_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

runs = Table(
    "churnlens_score_runs",
    metadata,
    # INTEGER PRIMARY KEY AUTOINCREMENT on SQLite: ids only grow, never reused after a delete, so
    # they order runs even when two share a scored_at.
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("model_version", String(255), nullable=False),
    Column("n_accounts", Integer, nullable=False),
    Column("data_digest", String(64), nullable=True),
    Column("source", String(32), nullable=False),
    sqlite_autoincrement=True,
)

scores = Table(
    "churnlens_scores",
    metadata,
    Column(
        "run_id",
        Integer,
        ForeignKey(runs.c.run_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account_id", String(255), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("model_version", String(255), nullable=False),
    Column("churn_probability", Float, nullable=False),
    Column("risk_band", String(16), nullable=False),
    Column("health_score", Integer, nullable=False),
    Column("touch_tier", String(32), nullable=False),
    Column("arr", Float, nullable=True),
    Column("arr_at_risk", Float, nullable=True),
    Column("top_reasons", Text, nullable=False),  # JSON list of reason dicts
    Column("playbooks", Text, nullable=False),  # JSON list of play dicts
    Column("lang", String(8), nullable=False),
    Column("csm_id", String(255), nullable=True),
    Column("name", Text, nullable=True),
    Column("plan", String(255), nullable=True),
    CheckConstraint("churn_probability >= 0 AND churn_probability <= 1", name="probability"),
    CheckConstraint("health_score >= 0 AND health_score <= 100", name="health_score"),
    Index(None, "account_id", "as_of"),
)

# What the CSM page shows beside a score (revision 0002): the account's recent weekly activity,
# the silent-customer flag and the reasons and plays in the other languages. At most one row per
# stored score, written in the same transaction; scores stored without it (older runs) have none.
details = Table(
    "churnlens_score_details",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("account_id", String(255), primary_key=True),
    Column("silent_decline", SmallInteger, nullable=True),  # 1 / 0 / unknown
    Column("activity", Text, nullable=True),  # JSON {"week_start": [...], "<column>": [...]}
    Column("translations", Text, nullable=True),  # JSON {lang: {"top_reasons", "playbooks"}}
    ForeignKeyConstraint(
        ["run_id", "account_id"],
        [scores.c.run_id, scores.c.account_id],
        ondelete="CASCADE",
    ),
)
