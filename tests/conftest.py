"""Shared test helpers: tiny contract tables built inline."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from churnlens.config import Config
from churnlens.features.contract import Tables, tables_from_frames

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Tests talk to loopback only: no usage statistics from BentoML or MLflow.
for _var in ("BENTOML_DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    os.environ.setdefault(_var, "true")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` keep each ``xdist_group`` on one worker again.

    pytest-xdist 3.8 tags a grouped test by setting ``item._nodeid``, which pytest 9.2 no longer
    reads (the node id comes from ``item._id``), so groups were spread over both workers and
    each built its module fixtures (a trained model, a server) twice. Same tag, set where it counts.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodes import coerce_node_id

    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        if names and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


def make_tables(
    frames: dict[str, pd.DataFrame], as_of: date | None = None, config: Config | None = None
) -> Tables:
    """Validate inline frames as the loader would (with a fixed clock)."""
    return tables_from_frames(frames, config or Config(), as_of, now=NOW)


def weekly(account: str, start: str, logins: list[int], **cols: list[float]) -> pd.DataFrame:
    """A timeline for one account: consecutive weeks from Monday ``start``."""
    weeks = pd.date_range(start, periods=len(logins), freq="7D")
    df = pd.DataFrame({"account_id": account, "week_start": weeks, "logins": logins})
    for name, values in cols.items():
        df[name] = values
    return df


@pytest.fixture
def tiny_frames() -> dict[str, pd.DataFrame]:
    """Two accounts with a little of everything (raw, CSV-like strings)."""
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["a", "b"],
                "created_at": ["2024-01-01", "2024-01-08"],
                "arr": ["12000", "50000"],
                "seats": ["10", "40"],
            }
        ),
        "usage_events": pd.DataFrame(
            {
                "account_id": ["a", "a", "a", "b"],
                "occurred_at": ["2024-01-02", "2024-01-03", "2024-01-16", "2024-01-09"],
                "event": ["login", "report", "login", "login"],
                "user_id": ["u1", "u1", "u2", "u3"],
            }
        ),
    }
