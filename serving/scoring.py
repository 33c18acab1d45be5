"""Scoring: calibrated probability, band, health, reasons and plays for each account.

One function, :func:`score_frame`, shared by ``churnlens score`` (batch) and the API, so the two
return the same numbers, reasons and plays for the same account and date.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ..config import Config
from ..model import ChurnModel
from .explain import reasons as explain_reasons
from .playbooks import Catalog, choose_playbooks, risk_band, touch_tier

SCORE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "as_of",
    "churn_probability",
    "risk_band",
    "health_score",
    "touch_tier",
    "arr",
    "arr_at_risk",
    "top_reasons",
    "playbooks",
)


def _nan_to_none(v: Any) -> Any:
    return None if isinstance(v, float) and not np.isfinite(v) else v


def score_frame(
    model: ChurnModel,
    indicators: pd.DataFrame,
    profiles: pd.DataFrame,
    cfg: Config,
    catalog: Catalog,
    *,
    lang: str = "en",
    top_k: int = 3,
) -> list[dict[str, Any]]:
    """Score every row of an indicator frame (one row per account and date).

    Args:
        model: the churn model package.
        indicators: output of ``compute_indicators`` (``account_id, as_of`` + indicators).
        profiles: one row per account (for ``touch_tier``; ARR comes from the indicators).
        cfg: band and tier thresholds.
        catalog: the playbook catalog.
        lang: "en" or "ja" for sentences and plays.
        top_k: reason families per account.

    Returns:
        One dict per row with the :data:`SCORE_COLUMNS` (reasons and plays as lists of dicts).
    """
    X = model.array(indicators)
    p = model.predict_proba(X)
    contrib = model.contributions(X)
    tiers = (
        profiles.drop_duplicates("account_id").set_index("account_id")["touch_tier"]
        if "touch_tier" in profiles.columns
        else pd.Series(dtype=object)
    )
    out = []
    # Plain Python values per column (as ``to_dict("records")`` gives, without its per-row cost).
    columns = {str(c): indicators[c].tolist() for c in indicators.columns}
    for i in range(len(indicators)):
        row = {c: values[i] for c, values in columns.items()}
        prob = float(p[i])
        arr = _nan_to_none(float(row.get("arr", float("nan"))))
        tier = touch_tier(
            tiers.get(row["account_id"]),
            arr,
            cfg.tiers.high_touch_min_arr,
            cfg.tiers.low_touch_min_arr,
        )
        band = risk_band(prob, cfg.bands.red, cfg.bands.yellow)
        why = explain_reasons(contrib[i], model.features, row, lang=lang, top_k=top_k)
        plays = choose_playbooks(
            why, tier, band, catalog, lang=lang, nps_last=_nan_to_none(row.get("nps_last"))
        )
        out.append(
            {
                "account_id": str(row["account_id"]),
                "as_of": pd.Timestamp(row["as_of"]).date().isoformat(),
                "churn_probability": prob,
                "risk_band": band,
                "health_score": round(100 * (1 - prob)),
                "touch_tier": tier,
                "arr": arr,
                "arr_at_risk": None if arr is None else prob * arr,
                "top_reasons": [r.to_dict() for r in why],
                "playbooks": [pl.to_dict() for pl in plays],
            }
        )
    return out


def to_table(rows: list[dict[str, Any]], model_version: str) -> pd.DataFrame:
    """The score file's frame: reasons and plays as JSON text, plus the model version."""
    df = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    for col in ("top_reasons", "playbooks"):
        df[col] = [json.dumps(v, ensure_ascii=False) for v in df[col]]
    df["model_version"] = model_version
    return df.sort_values(
        ["arr_at_risk", "account_id"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)
