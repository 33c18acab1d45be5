"""Build ``POST /predict`` requests from the batch pipeline's own frames.

Any client (and the tests and benchmarks) can turn the ``accounts`` table and ``churnlens
timeline`` output into the request the API expects, with missing values as JSON null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from typing import Any

import pandas as pd


def jsonable(v: Any) -> Any:
    """A JSON value for one cell of a pandas frame (missing -> None, timestamps ISO 8601)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def account_items(
    timeline: pd.DataFrame, accounts: pd.DataFrame, ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """``accounts[]`` items (``account_id``, ``profile``, ``weeks``) for ``ids``, by id."""
    want = [str(a) for a in ids]
    keep = set(want)
    weeks: dict[str, list[dict[str, Any]]] = {a: [] for a in want}
    for rec in timeline.loc[timeline["account_id"].isin(keep)].to_dict("records"):
        aid = str(rec["account_id"])
        weeks[aid].append({str(k): jsonable(v) for k, v in rec.items() if k != "account_id"})
    out: dict[str, dict[str, Any]] = {}
    for prof in accounts.loc[accounts["account_id"].isin(keep)].to_dict("records"):
        aid = str(prof["account_id"])
        out[aid] = {
            "account_id": aid,
            "profile": {str(k): jsonable(v) for k, v in prof.items() if k != "account_id"},
            "weeks": weeks[aid],
        }
    return out


def predict_request(as_of: date, items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``POST /predict`` body for these account items."""
    return {"as_of": as_of.isoformat(), "accounts": list(items)}
