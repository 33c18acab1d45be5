"""The score store: the history of every ``churnlens score`` run in a real database.

SQLite by default (``churnlens.db`` in the working directory), PostgreSQL or any SQLAlchemy URL via
``CHURNLENS_DATABASE_URL`` or ``churnlens score --db URL``. Tables are named ``churnlens_*`` and the
schema is versioned by Alembic (version table ``churnlens_alembic_version``), so the store can live
in the same database as MLflow's tracking tables.

    from churnlens.store import open_store

    with open_store() as store:
        run_id = store.append_scores(rows, as_of="2025-10-05", model_version="churnlens v3")
        latest = store.latest_scores(["acc-1", "acc-2"])
"""

from __future__ import annotations

from .db import (
    DEFAULT_DATABASE_URL,
    ENV_VAR,
    alembic_config,
    database_url,
    display_url,
    head_revision,
)
from .scores import (
    RiskPoint,
    ScoreDetails,
    ScoreRun,
    ScoreStore,
    ScoreSummary,
    StoredScore,
    account_details,
    open_store,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_VAR",
    "RiskPoint",
    "ScoreDetails",
    "ScoreRun",
    "ScoreStore",
    "ScoreSummary",
    "StoredScore",
    "account_details",
    "alembic_config",
    "database_url",
    "display_url",
    "head_revision",
    "open_store",
]
