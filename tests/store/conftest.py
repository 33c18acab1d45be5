"""Score store fixtures: a SQLite file per test, and a fresh PostgreSQL schema per test.

PostgreSQL is the machine's server (``test`` database, shared with MLflow's tests and other
workers): each test gets its own schema ``churnlens_test_<hex>`` through the URL's
``options=-csearch_path=...``, dropped afterwards, so parallel workers never see each other's rows
and nothing outside that schema is touched. Skipped, with the reason, only when no PostgreSQL
answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from churnlens.store import ScoreStore, open_store

PG_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def pg_available() -> str | None:
    """None when PostgreSQL answers at :data:`PG_URI`, else why not."""
    engine = sa.create_engine(PG_URI, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except Exception as err:  # any connection failure means there is no server to test against
        return str(err).splitlines()[0]
    finally:
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose tables land in a new, empty schema (dropped after the test)."""
    why = pg_available()
    if why is not None:
        pytest.skip(f"no PostgreSQL answers at 127.0.0.1:5432/test: {why}")
    schema = f"churnlens_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URI)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URI}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'scores.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[ScoreStore]:
    """An opened (migrated) store on each backend."""
    with open_store(db_url) as s:
        yield s


def score_row(account: str, p: float, as_of: str = "2025-03-02", **extra: Any) -> dict[str, Any]:
    """A row shaped like ``score_frame``'s."""
    arr = extra.pop("arr", 12000.0)
    row: dict[str, Any] = {
        "account_id": account,
        "as_of": as_of,
        "churn_probability": p,
        "risk_band": "red" if p >= 0.5 else "yellow" if p >= 0.2 else "green",
        "health_score": round(100 * (1 - p)),
        "touch_tier": "high",
        "arr": arr,
        "arr_at_risk": None if arr is None else p * arr,
        "top_reasons": [
            {
                "family": "usage",
                "label": "Logins falling",
                "impact": 0.4,
                "evidence": ["ログイン -40%"],
            }
        ],
        "playbooks": [{"id": "exec-sponsor", "title": "Call", "owner": "CSM", "due_days": 7}],
    }
    row.update(extra)
    return row


def at(minutes: int) -> datetime:
    """A fixed scoring time, ``minutes`` after :data:`T0`."""
    return T0 + timedelta(minutes=minutes)
