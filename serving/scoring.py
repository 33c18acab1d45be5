"""Scoring: calibrated probability, band, health, reasons and plays for each account.

One function, :func:`score_frame`, shared by ``churnlens score`` (batch) and the API, so the two
return the same numbers, reasons and plays for the same account and date.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
# The weekly timeline columns the CSM page charts (stored per account by ``churnlens score``).
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "logins",
    "active_users",
    "distinct_features",
    "core_feature_events",
    "tickets_opened",
    "tickets_urgent",
    "surveys_sent",
    "surveys_answered",
    "nps_sum",
    "nps_n",
    "touches",
    "touches_inbound",
)
ACTIVITY_WEEKS = 26


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
    also_langs: Sequence[str] = (),
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
        also_langs: other languages to render the same reasons and plays in (the contributions
            are computed once); each row then has ``translations``: ``lang -> {top_reasons,
            playbooks}``.

    Returns:
        One dict per row with the :data:`SCORE_COLUMNS` (reasons and plays as lists of dicts),
        plus ``translations`` when ``also_langs`` names a language other than ``lang``.
    """
    others = [lg for lg in dict.fromkeys(also_langs) if lg != lang]
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
        nps_last = _nan_to_none(row.get("nps_last"))
        plays = choose_playbooks(why, tier, band, catalog, lang=lang, nps_last=nps_last)
        scored: dict[str, Any] = {
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
        if others:
            translations = {}
            for lg in others:
                why_lg = explain_reasons(contrib[i], model.features, row, lang=lg, top_k=top_k)
                plays_lg = choose_playbooks(why_lg, tier, band, catalog, lang=lg, nps_last=nps_last)
                translations[lg] = {
                    "top_reasons": [r.to_dict() for r in why_lg],
                    "playbooks": [pl.to_dict() for pl in plays_lg],
                }
            scored["translations"] = translations
        out.append(scored)
    return out


def recent_activity(
    timeline: pd.DataFrame,
    indicators: pd.DataFrame | None = None,
    *,
    weeks: int = ACTIVITY_WEEKS,
) -> dict[str, dict[str, Any]]:
    """Each account's last ``weeks`` timeline weeks and silent-customer flag, for the score store.

    Args:
        timeline: ``churnlens timeline`` output (``account_id, week_start`` + timeline columns).
        indicators: ``compute_indicators`` output; its ``silent_decline`` column (latest row per
            account) becomes the flag when present.
        weeks: most recent weeks kept per account.

    Returns:
        ``account_id -> {"activity": {"week_start": [ISO dates], "<column>": [values]},
        "silent_decline": 1 | 0 | None}`` with :data:`ACTIVITY_COLUMNS` (unknown values None),
        the ``details`` argument of :meth:`churnlens.store.ScoreStore.append_scores`.
    """
    out: dict[str, dict[str, Any]] = {}
    if len(timeline):
        cols = [c for c in ACTIVITY_COLUMNS if c in timeline.columns]
        t = (
            timeline.sort_values(["account_id", "week_start"], kind="stable")
            .groupby("account_id", sort=False)
            .tail(weeks)
        )
        ids = t["account_id"].astype(str).to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        week_start = pd.to_datetime(t["week_start"]).dt.strftime("%Y-%m-%d").tolist()
        values = {c: [_cell(v) for v in t[c].astype("float64").to_numpy()] for c in cols}
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            activity: dict[str, list[Any]] = {"week_start": week_start[a:b]}
            for c in cols:
                activity[c] = values[c][a:b]
            out[str(ids[a])] = {"activity": activity, "silent_decline": None}
    if indicators is not None and "silent_decline" in indicators.columns and len(indicators):
        last = indicators.sort_values("as_of", kind="stable").drop_duplicates(
            "account_id", keep="last"
        )
        flags = pd.to_numeric(last["silent_decline"], errors="coerce").astype("float64")
        for aid, flag in zip(last["account_id"].astype(str), flags.to_numpy(), strict=True):
            value = _cell(flag)
            out.setdefault(aid, {"activity": None, "silent_decline": None})
            out[aid]["silent_decline"] = None if value is None else int(value != 0)
    return out


def _cell(v: float | np.floating[Any]) -> int | float | None:
    """A JSON number for a timeline value: whole numbers as int, unknown (NaN) as None."""
    if not np.isfinite(v):
        return None
    return int(v) if float(v).is_integer() else round(float(v), 4)


def to_table(rows: list[dict[str, Any]], model_version: str) -> pd.DataFrame:
    """The score file's frame: reasons and plays as JSON text, plus the model version."""
    df = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    for col in ("top_reasons", "playbooks"):
        df[col] = [json.dumps(v, ensure_ascii=False) for v in df[col]]
    df["model_version"] = model_version
    return df.sort_values(
        ["arr_at_risk", "account_id"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)
